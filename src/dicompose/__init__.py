"""dicompose: portable, reproducible, secure container-based medical image analysis."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dicompose")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
