"""Entrypoint of the Jatra containers in compose: the compose secrets into the environment, then jatra.

Jatra reads every setting from a ``JATRA_*`` environment variable; compose mounts secrets as files under
/run/secrets. So a value in the compose files may name a secret as ``{secret:NAME}``, and this replaces it
with the content of /run/secrets/NAME (without its trailing newline) before it runs ``jatra`` with the
container's command. Inside a URL (a value with ``://``) the secret is percent-encoded, so a password with
any character stays a valid URL. The secrets stay out of the compose files and out of ``docker inspect``,
and ``jatra config`` masks them.

    environment:
      JATRA_DATABASE_URL: postgresql+asyncpg://jatra:{secret:postgres_jatra_password}@pgbouncer:6432/jatra
    secrets: [postgres_jatra_password]

A placeholder whose secret is not mounted stops the container with exit status 78 (a configuration error)
and a message naming the variable and the secret. Standard library only: it runs before anything else.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

SECRETS_DIR = Path("/run/secrets")
PLACEHOLDER = re.compile(r"\{secret:([A-Za-z0-9_.-]+)\}")
#: sysexits.h EX_CONFIG
EXIT_CONFIG = 78


class MissingSecretError(RuntimeError):
    def __init__(self, variable: str, secret: str, path: Path) -> None:
        super().__init__(
            f"{variable} names the secret {secret!r}, but {path} does not exist: add it to the service's "
            "`secrets:` (and run `make compose-secrets`)"
        )


def resolve(environ: Mapping[str, str], secrets_dir: Path = SECRETS_DIR) -> dict[str, str]:
    """``environ`` with every ``{secret:NAME}`` placeholder replaced by the secret's content."""
    resolved = dict(environ)
    for variable, value in environ.items():
        if "{secret:" not in value:
            continue
        in_url = "://" in value

        def fill(match: re.Match[str], variable: str = variable, in_url: bool = in_url) -> str:
            path = secrets_dir / match.group(1)
            try:
                secret = path.read_text().rstrip("\n")
            except FileNotFoundError:
                raise MissingSecretError(variable, match.group(1), path) from None
            return urllib.parse.quote(secret, safe="") if in_url else secret

        resolved[variable] = PLACEHOLDER.sub(fill, value)
    return resolved


def main(argv: Sequence[str]) -> NoReturn:
    try:
        environ = resolve(os.environ)
    except MissingSecretError as exc:
        print(f"entrypoint: {exc}", file=sys.stderr)  # noqa: T201 - no logging is configured yet
        raise SystemExit(EXIT_CONFIG) from None
    os.execvpe("jatra", ["jatra", *argv], environ)  # noqa: S606 - replaces this process with jatra


if __name__ == "__main__":
    main(sys.argv[1:])
