"""docs/plugins.md, followed to the letter: build its package, pip-install it, find the scheme
through its entry point, score with it, uninstall it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
DISTRIBUTION = "examhall-acme-scheme"

PROBE = """
import numpy as np
from engine.model import Blueprint, Exam, Part, Site
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.scoring import ResponseMatrix

registry = SchemeRegistry(create_plugin_manager())
print("schemes", registry.names())
print("plugin", registry.plugin_of("acme-60"))
part = Part("p", {"en": "P"}, "b", 600, Blueprint("topic", {"t": 10}))
exam = Exam("e", {"en": "E"}, "acme-60", ("en",), (part,), (Site("s", {"en": "S"}),))
keys = np.zeros(10, dtype=np.int16)
choices = np.array([[0] * 6 + [1] * 4, [0] * 5 + [1] * 5], dtype=np.int16)
matrix = ResponseMatrix(("six", "five"), tuple(f"i{n}" for n in range(10)), choices, keys,
                        {"topic": np.array(["t"] * 10)})
for result in registry.score_part(exam, part, matrix):
    print("result", result.candidate_id, result.score, result.outcome.value, list(result.reasons))
"""


def guide_files() -> dict[str, str]:
    """Every fenced block of the guide whose first line is ``# file: PATH``."""
    blocks = re.findall(r"```[a-z]*\n# file: (\S+)\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return {path: body for path, body in blocks}


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    files = guide_files()
    assert set(files) == {"acme-scheme/pyproject.toml", "acme-scheme/src/acme_scheme/__init__.py"}
    for relative, body in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    package = tmp_path / "acme-scheme"
    done = pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(package))
    assert done.returncode == 0, done.stderr
    try:
        yield package
    finally:
        removed = pip("uninstall", "--yes", DISTRIBUTION)
        assert removed.returncode == 0, removed.stderr


def test_the_guide_builds_a_package_the_engine_finds_and_scores_with(installed: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert "schemes ['acme-60', 'kz-prosecutor', 'ua-prosecutor']" in lines
    assert "plugin acme" in lines
    assert "result six 6.0 pass []" in lines
    assert "result five 5.0 fail ['5 of 10, 6 needed']" in lines
    listed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "scheme", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^acme-60\s+acme\s+ACME: 60 % to pass$", listed.stdout, flags=re.M)


def test_after_uninstalling_the_scheme_is_gone() -> None:
    shown = pip("show", DISTRIBUTION)
    assert shown.returncode != 0, f"{DISTRIBUTION} is still installed"
