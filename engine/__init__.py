"""examhall: proctored computer-based test delivery with pluggable scoring schemes."""

from engine.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
