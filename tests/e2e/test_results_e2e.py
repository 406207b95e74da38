"""Results from a running server's data directory: certificates issued while it runs (read-only),
verified offline, and the server's stored scores re-scored to the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import signatures
from engine.cli import main
from tests.e2e.conftest import Running


async def test_results_of_a_live_server_become_sealed_certificates(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = {}
    for choice in (0, 1, 2):
        client, signed = await running.candidate()
        form = await client.start("ru")
        for item in form.items:
            await client.answer(item.id, choice)
        closed = await client.submit()
        assert closed.result is not None
        scores[signed["candidate"]["id"]] = int(closed.result["score"])
    data = running.config.data_dir
    banks = running.config.banks_dir
    out = tmp_path / "certificates"
    place = ["--data", str(data), "--banks", str(banks), "--exam", "t-exam"]
    assert main(["results", "documents", *place, "--out", str(out), "--format", "html"]) == 0
    key = signatures.public_key_of(data)
    assert len(list(out.glob("certificate-*.html"))) == len(scores)
    for candidate_id, score in scores.items():
        page = out / f"certificate-{candidate_id}-main.html"
        signatures.verify_file(page, expected_key=key)
        text = page.read_text(encoding="utf-8")
        assert "Справка о результатах" in text and f"<td>{score} из 12 (" in text
    capsys.readouterr()
    assert main(["score", *place]) == 0
    assert capsys.readouterr().out == "", "re-scoring the server's results changes nothing"
