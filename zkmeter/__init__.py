"""zkmeter: provable usage metering and royalty settlement for AI models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zkmeter")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
