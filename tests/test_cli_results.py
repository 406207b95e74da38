"""The results commands end to end on a real data directory: documents and their verification,
signatures, the working group, appeals, re-scoring and item analysis."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import journal
from engine.cli import main
from engine.offline import hold_data_dir
from engine.store.sqlite import read_journal
from tests.results_world import KYIV, World, local, open_world, write_group

NOW = local(KYIV, 2026, 3, 10, 15, 0)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Sittings of ua-t and kz-t on disk, the store closed (as after the server stopped)."""

    async def build() -> World:
        opened = await open_world(tmp_path)
        for n, candidate_id in enumerate(("ua-01", "ua-02", "ua-03", "ua-06", "ua-07")):
            at = NOW - 7200 + n
            await opened.sit("ua-t", candidate_id, "professional", closed_at=at, correct=4 + n)
            await opened.sit("ua-t", candidate_id, "aptitude", closed_at=at + 3600, correct=n + 2)
        await opened.sit("ua-t", "ua-08", "professional", closed_at=NOW - 7000, state="terminated")
        for candidate_id, right in (("kz-01", 12), ("kz-02", 16), ("kz-03", 19)):
            await opened.sit(
                "kz-t", candidate_id, "legislation", closed_at=NOW - 600, correct=right
            )
        await opened.store.close()
        return opened

    built = asyncio.run(build())
    monkeypatch.setattr(time, "time", lambda: NOW)
    yield built


def run(world: World, *args: str) -> int:
    """`examhall ARGS` on the world's data directory and banks."""
    return main([*args, "--data", str(world.data_dir), "--banks", str(world.banks_dir)])


def test_documents_are_written_and_each_one_verifies(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs"
    assert run(world, "results", "documents", "--exam", "ua-t", "--out", str(out)) == 0
    files = sorted(p.name for p in out.iterdir())
    assert "rating-list-okruzhna-prokuratura-mista-kyieva-1.html" in files
    assert "removal-act-ua-08-professional.csv.seal" in files
    documents = [p for p in out.iterdir() if p.suffix in (".html", ".csv")]
    capsys.readouterr()
    assert main(["results", "verify", *map(str, documents)]) == 0
    assert capsys.readouterr().out.count("ok ") == len(documents)


def test_a_changed_sheet_fails_verification(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs"
    run(world, "results", "documents", "--exam", "ua-t", "--out", str(out), "--kind", "rating-list")
    sheet = next(out.glob("rating-list-*kyieva*.csv"))
    sheet.write_bytes(sheet.read_bytes().replace(b",", b";", 1))
    capsys.readouterr()
    assert main(["results", "verify", str(sheet)]) == 1
    assert "FAILED" in capsys.readouterr().out
    page = next(out.glob("rating-list-*kyieva*.html"))
    other = tmp_path / "other-data"
    from engine import signatures

    signatures.signer_for(other)
    assert main(["results", "verify", "--data", str(other), str(page)]) == 1
    assert "not by the expected key" in capsys.readouterr().out
    assert main(["results", "verify", "--data", str(world.data_dir), str(page)]) == 0


def test_show_prints_ratings_with_posts(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    office = "Окружна прокуратура міста Києва №1"
    assert run(world, "results", "show", "--exam", "ua-t", "--json", "--posts", f"{office}=2") == 0
    shown = json.loads(capsys.readouterr().out)
    (kyiv,) = [r for r in shown["ratings"] if r["group"] == office]
    totals = [e["score"] for e in kyiv["entries"]]
    assert totals == sorted(totals, reverse=True) and len(totals) == 3
    assert run(world, "results", "show", "--exam", "ua-t", "--posts", f"{office}=2") == 0
    assert capsys.readouterr().out.count("← post") == 2


def test_signatures_the_group_and_an_appeal_through_the_commands(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = write_group(tmp_path / "group.csv")
    assert run(world, "group", "set", "--exam", "ua-t", str(group)) == 0
    assert main(["group", "show", "--exam", "ua-t", "--data", str(world.data_dir)]) == 0
    assert "15 member(s)" in capsys.readouterr().out
    sign = ["--exam", "ua-t", "--candidate", "ua-01", "--part", "professional"]
    assert run(world, "results", "countersign", *sign, "--member", "m04") == 1
    assert "has not acknowledged" in capsys.readouterr().err
    assert run(world, "results", "acknowledge", *sign) == 0
    assert run(world, "results", "countersign", *sign, "--member", "m04") == 0
    appeal = ["--exam", "ua-t", "--candidate", "ua-01", "--subject", "result"]
    assert (
        run(
            world,
            "appeal",
            "file",
            *appeal,
            "--by",
            "ua-01-lawyer",
            "--part",
            "professional",
            "--grounds",
            "g",
        )
        == 1
    )
    assert "personally" in capsys.readouterr().err
    assert (
        run(
            world,
            "appeal",
            "file",
            *appeal,
            "--by",
            "ua-01",
            "--part",
            "professional",
            "--grounds",
            "item 3",
        )
        == 0
    )
    present = ",".join(f"m{n:02d}" for n in range(1, 11))
    uphold = ",".join(f"m{n:02d}" for n in range(1, 8))
    reject = ",".join(f"m{n:02d}" for n in range(8, 11))
    decided = run(
        world, "appeal", "decide", "--exam", "ua-t", "--number", "1", "--present", present,
        "--uphold", uphold, "--reject", reject, "--decision", "one point added", "--new-score", "5",
    )  # fmt: skip
    assert decided == 0
    assert "appeal 1: upheld; score 4 → 5" in capsys.readouterr().out
    assert main(["appeal", "list", "--data", str(world.data_dir), "--exam", "ua-t", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["status"], listed["score_after"], len(listed["present"])) == ("upheld", 5.0, 10)
    journal.verify(read_journal(world.store.path), journal.read_head(world.data_dir))


def test_a_bad_group_file_is_refused_whole(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_group(tmp_path / "bad.csv", [("a", "A", "head"), ("a", "B", "chair")])
    assert run(world, "group", "set", "--exam", "ua-t", str(bad)) == 1
    err = capsys.readouterr().err
    assert "role 'chair' is not one of" in err and "exactly one secretary" in err


def test_writing_commands_refuse_while_the_data_directory_is_held(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = hold_data_dir(world.data_dir)
    try:
        sign = ["--exam", "ua-t", "--candidate", "ua-01", "--part", "professional"]
        assert run(world, "results", "acknowledge", *sign) == 1
        assert "in use by a running examhall server" in capsys.readouterr().err
        out = tmp_path / "docs"
        assert run(world, "results", "documents", "--exam", "kz-t", "--out", str(out)) == 0, (
            "reading works beside the server"
        )
    finally:
        lock.release()


def test_score_shows_changes_and_writes_only_when_confirmed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_rescoring import correct_a_key

    correct_a_key(world)
    head = journal.read_head(world.data_dir)
    score = [
        "score",
        "--data",
        str(world.data_dir),
        "--banks",
        str(world.banks_dir),
        "--exam",
        "kz-t",
    ]
    assert main(score) == 0
    captured = capsys.readouterr()
    assert "kz-t/kz-01/legislation: 12/20 fail → 11/20 fail" in captured.out
    assert "nothing written" in captured.err
    assert journal.read_head(world.data_dir) == head
    assert main([*score, "--confirm"]) == 1
    assert "say why" in capsys.readouterr().err
    assert main([*score, "--confirm", "--reason", "key corrected"]) == 0
    assert "result(s) written" in capsys.readouterr().err
    assert main([*score, "--json"]) == 0
    assert capsys.readouterr().out == "", "nothing left to change"


def test_score_and_analyze_responses_from_a_file(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.rescoring import stored_responses

    responses = stored_responses(world.data_dir, world.exams["kz-t"], world.banks)
    path = tmp_path / "r.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "candidate": r.candidate_id,
                    "part": r.part_id,
                    "items": list(r.items),
                    "answers": dict(r.answers),
                }
            )
            + "\n"
            for r in responses
        )
    )
    base = ["--banks", str(world.banks_dir), "--exam", "kz-t", "--responses", str(path)]
    assert main(["score", *base]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["candidate"], x["score"]) for x in lines] == [
        ("kz-01", 12.0),
        ("kz-02", 16.0),
        ("kz-03", 19.0),
    ]
    assert main(["analyze", *base, "--part", "legislation", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 40 and set(rows[0]) >= {"item", "p_value", "discrimination", "chose_A"}
    assert main(["analyze", *base, "--part", "legislation", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["candidates"] == 3 and report["form_length"] == 20
    data = ["--banks", str(world.banks_dir), "--exam", "ua-t", "--data", str(world.data_dir)]
    assert main(["analyze", *data, "--part", "aptitude"]) == 0
    assert "KR-20" in capsys.readouterr().out


def test_scheme_commands(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scheme", "list"]) == 0
    assert "ua-prosecutor" in capsys.readouterr().out
    assert main(["scheme", "check", "--banks", str(world.banks_dir), "--exam", "kz-t"]) == 1
    out = capsys.readouterr().out
    assert "has 20 items, the rules say 120" in out


def test_the_key_command_prints_the_key_documents_are_sealed_with(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine import signatures

    out = tmp_path / "docs"
    assert run(world, "results", "documents", "--exam", "kz-t", "--out", str(out)) == 0
    capsys.readouterr()
    assert main(["results", "key", "--data", str(world.data_dir)]) == 0
    printed = capsys.readouterr().out.split()
    page = next(out.glob("*.html"))
    assert printed[2] == signatures.verify_file(page).seal.key_id


def _rating_note(world: World, tmp_path: Path, name: str) -> str:
    """The approval note under the Kyiv rating list, as the written page carries it."""
    out = tmp_path / name
    run(world, "results", "documents", "--exam", "ua-t", "--out", str(out), "--kind", "rating-list")
    page = next(out.glob("rating-list-*kyieva*.html")).read_text(encoding="utf-8")
    (note,) = re.findall(r'<p class="note">([^<]*[Зз]атверд[^<]*)<', page)
    return html.unescape(note)


def test_the_group_approves_a_rating_list_and_a_later_change_voids_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    office = "Окружна прокуратура міста Києва №1"
    assert run(world, "group", "set", "--exam", "ua-t", str(write_group(tmp_path / "g.csv"))) == 0
    assert "ще не затверджено" in _rating_note(world, tmp_path, "before")
    vote = ["results", "approve-rating", "--exam", "ua-t", "--office", office]
    nine = ",".join(f"m{n:02d}" for n in range(1, 10))
    capsys.readouterr()
    assert run(world, *vote, "--present", nine, "--uphold", nine, "--protocol", "№ 3") == 1
    assert "no quorum: 9 of 15 members present, 10 needed" in capsys.readouterr().err
    ten = ",".join(f"m{n:02d}" for n in range(1, 11))
    assert run(world, *vote, "--present", ten, "--uphold", "m01,m02,m03,m04,m05",
               "--reject", "m06,m07,m08,m09", "--abstain", "m10",
               "--protocol", "№ 3 від 10.03.2026") == 0  # fmt: skip
    assert f"rating list {office}: not approved" in capsys.readouterr().out
    assert "не затвердила" in _rating_note(world, tmp_path, "rejected"), "5 of 10: no majority"
    assert run(world, *vote, "--present", ten, "--uphold", "m01,m02,m03,m04,m05,m06",
               "--reject", "m07,m08,m09,m10", "--protocol", "№ 4 від 11.03.2026") == 0  # fmt: skip
    approved = _rating_note(world, tmp_path, "approved")
    assert approved.startswith("Затверджено робочою групою більшістю голосів")
    assert "протокол № 4 від 11.03.2026" in approved and "за — 6, проти — 4" in approved
    events = [
        e for e in read_journal(world.data_dir / "examhall.sqlite3") if e.kind == "rating-voted"
    ]
    assert len(events) == 2

    appeal = ["--exam", "ua-t", "--candidate", "ua-01", "--subject", "result"]
    assert run(world, "appeal", "file", *appeal, "--by", "ua-01", "--part", "professional",
               "--grounds", "item 3") == 0  # fmt: skip
    decide = ["appeal", "decide", "--exam", "ua-t", "--number", "1", "--present", ten]
    assert run(world, *decide, "--uphold", ten, "--decision", "two points added",
               "--new-score", "6") == 0  # fmt: skip
    assert "змінився після голосування" in _rating_note(world, tmp_path, "after-appeal"), (
        "the list the group approved is not the list now"
    )
    assert run(world, *vote, "--present", ten, "--uphold", ten, "--protocol", "№ 5") == 0
    assert _rating_note(world, tmp_path, "again").startswith("Затверджено")
    assert run(world, *vote[:-1], "Нема такої", "--present", ten, "--uphold", ten,
               "--protocol", "№ 6") == 1  # fmt: skip
    assert "has no rating list for 'Нема такої'" in capsys.readouterr().err


def test_rating_lists_print_to_sealed_pdf_and_without_chromium_say_what_is_missing(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "pdf"
    documents = ["results", "documents", "--exam", "ua-t", "--kind", "rating-list"]
    assert run(world, *documents, "--out", str(out), "--format", "pdf,html") == 0
    pdfs = sorted(out.glob("*.pdf"))
    assert [p.stem for p in pdfs] == sorted(p.stem for p in out.glob("*.html")) and len(pdfs) == 2
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and b"DejaVuSerif" in data, "Cyrillic in an embedded font"
    capsys.readouterr()
    assert main(["results", "verify", *map(str, pdfs)]) == 0
    pdfs[0].write_bytes(pdfs[0].read_bytes() + b"\n")
    assert main(["results", "verify", str(pdfs[0])]) == 1

    monkeypatch.setenv("EXAMHALL_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert run(world, *documents, "--out", str(tmp_path / "none"), "--format", "pdf") != 0
    assert "is not an executable" in capsys.readouterr().err
    assert list((tmp_path / "none").glob("*.pdf")) == []
    monkeypatch.delenv("EXAMHALL_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))  # no Chromium anywhere
    assert run(world, *documents, "--out", str(tmp_path / "none"), "--format", "pdf") != 0
    assert "apt-get install chromium" in capsys.readouterr().err
