"""The package version, read once from the installed distribution's metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("autoheal-otel")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
