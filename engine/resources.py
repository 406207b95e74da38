"""Where the files shipped with the package are: inside the wheel, or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _bundled(installed: str, checkout: str) -> Path:
    inside = _PACKAGE / "_data" / installed
    return inside if inside.is_dir() else _CHECKOUT / checkout


def bundled_banks_dir() -> Path:
    """The demo banks (and banks/exams, the demo exams)."""
    return _bundled("banks", "banks")


def web_client_dir() -> Path:
    """The candidate page and the proctor dashboard."""
    return _bundled("web", "clients/web")
