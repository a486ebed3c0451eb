"""floodkd: coastal flood-risk maps by cross-modal knowledge distillation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("floodkd")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
