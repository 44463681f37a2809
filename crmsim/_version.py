"""crmsim's version, read from the installed package's metadata (pyproject.toml is its one place)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crmsim")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
