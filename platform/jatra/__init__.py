"""Jatra: an observable-first railway ticketing platform."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jatra")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
