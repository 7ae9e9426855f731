"""Secrets a laptop needs but nobody should have to configure: generated once, kept in STATE_DIR/secrets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from jatra.settings import Settings


def load_or_create(settings: Settings, name: str, nbytes: int = 32) -> str:
    return load_or_create_in(settings.state_dir, name, nbytes)


def load_or_create_in(state_dir: Path, name: str, nbytes: int = 32) -> str:
    """The secret ``name`` under ``state_dir/secrets``, generated on first use (the stack starts servers
    with these before any Settings exist)."""
    path = state_dir / "secrets" / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # first writer wins; concurrent starters read the same secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return Path(path).read_text().strip()


def jwt_secret(settings: Settings) -> str:
    return settings.jwt_secret or load_or_create(settings, "jwt.key")


#: the local S3 server's access key; its secret key is generated (``s3.key``)
LOCAL_S3_ACCESS_KEY = "jatra"


def s3_secret_key(settings: Settings) -> str:
    return settings.s3_secret_key or load_or_create(settings, "s3.key")
