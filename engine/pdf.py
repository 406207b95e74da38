"""Printable PDF of a document, by the machine's Chromium (UA-14: "printable HTML/PDF").

The HTML page is laid out for A4 already (`engine.documents`), and Chromium prints it as a
browser would, so the PDF is the page. Chromium is `EXAMHALL_CHROMIUM`, else the first of
`CHROMIUM_NAMES` on the path; without one the PDF format is refused, naming what to install.
The page has no scripts and no external files, so it is printed with no network and a fresh
profile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.exceptions import ConfigError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT_S = 60.0


def chromium() -> str:
    """The Chromium to print with; `ConfigError` when there is none."""
    chosen = os.environ.get("EXAMHALL_CHROMIUM")
    if chosen:
        if shutil.which(chosen) is None:
            raise ConfigError(f"EXAMHALL_CHROMIUM={chosen!r} is not an executable")
        return chosen
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise ConfigError(
        "PDF documents are printed by Chromium, and none was found: install it (Debian: "
        "apt-get install chromium) or set EXAMHALL_CHROMIUM to its path; html and csv need "
        "nothing"
    )


def print_pdf(html: Path, pdf: Path) -> None:
    """Print the page at `html` to `pdf` (A4, as the page's own `@page` rule says)."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="examhall-print-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # as root it refuses to start otherwise; the page is our own
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PRINT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            took = f"Chromium took over {PRINT_TIMEOUT_S:.0f} s to print {html.name}"
            raise ConfigError(took) from None
    if not pdf.exists() or not pdf.read_bytes().startswith(b"%PDF-"):
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise ConfigError(
            f"Chromium did not print {html.name} (exit code {done.returncode}): "
            + (" / ".join(tail) or "no message")
        )
