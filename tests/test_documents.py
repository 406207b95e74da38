"""Documents: their content checks, the CSV layout, printable HTML, sealed writing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from engine import signatures
from engine.dates import add_months, add_years, end_of_day, local_date, start_of_day, zone
from engine.documents import Document, SignatureLine, render_csv, render_html, slug, write_document

SHEET = Document(
    kind="results-sheet",
    name="results-sheet-kyiv-1",
    language="uk",
    title="Відомість про результати тестування",
    subtitle=("Окружна прокуратура міста Києва №1",),
    reference="Додаток 1",
    fields=(("Регіональний центр", "Київ"),),
    columns=("№", "ПІБ", "Результат"),
    rows=(("1", "Бойко Андрій <b>", "87 з 100"), ("2", 'Мороз "Юлія"', "91 з 100")),
    notes=("Примітка",),
    signature_lines=(SignatureLine("Керівник робочої групи", "Коваленко Н. С."),),
)


def test_a_row_must_fill_every_column() -> None:
    with pytest.raises(ValueError, match="row 1 has 2 cells for 3 columns"):
        Document("k", "n", "uk", "T", columns=("a", "b", "c"), rows=(("1", "2"),))


@pytest.mark.parametrize("name", ["", "Sheet", "../x", "a b", "-x"])
def test_a_document_name_is_a_safe_file_name(name: str) -> None:
    with pytest.raises(ValueError, match="must be lowercase"):
        Document("k", name, "uk", "T")


def test_slugs_transliterate_cyrillic_office_names() -> None:
    assert slug("rating", "Окружна прокуратура міста Львова №2") == (
        "rating-okruzhna-prokuratura-mista-lvova-2"
    )
    assert slug("Жұмабаев Ерлан") == "zhumabaev-erlan"
    assert slug("№") == "document"


def test_csv_has_the_fields_then_a_blank_row_then_the_table() -> None:
    raw = render_csv(SHEET)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [
        ["Регіональний центр", "Київ"],
        [],
        ["№", "ПІБ", "Результат"],
        ["1", "Бойко Андрій <b>", "87 з 100"],
        ["2", 'Мороз "Юлія"', "91 з 100"],
    ]


def test_html_escapes_content_and_carries_no_scripts() -> None:
    page = render_html(SHEET, key_id="abcd1234abcd1234").decode()
    assert "Бойко Андрій &lt;b&gt;" in page and "<b>" not in page
    assert "Мороз &quot;Юлія&quot;" in page
    assert "<script" not in page and "http" not in page
    assert "@page { size: A4" in page
    assert "examhall key abcd1234abcd1234" in page
    assert page.index("Додаток 1") < page.index("<h1>") < page.index('<table class="grid">')


def test_written_documents_are_sealed_in_each_format(tmp_path: Path) -> None:
    signer = signatures.signer_for(tmp_path / "data")
    written = write_document(SHEET, tmp_path / "out", signer, exam_id="ua-t", issued_at=1.7e9)
    assert sorted(p.name for p in written) == [
        "results-sheet-kyiv-1.csv",
        "results-sheet-kyiv-1.csv.seal",
        "results-sheet-kyiv-1.html",
    ]
    for path in written:
        if path.suffix != ".seal":
            seal = signatures.verify_file(path, expected_key=signer.public_key).seal
            assert seal.meta["exam"] == "ua-t" and seal.meta["kind"] == "results-sheet"
    with pytest.raises(ValueError, match="unknown format"):
        write_document(
            SHEET, tmp_path / "out", signer, exam_id="ua-t", issued_at=0, formats=["docx"]
        )


# --- the calendar the rules count in -----------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ((2026, 1, 31), 1, (2026, 2, 28)),
        ((2028, 1, 31), 1, (2028, 2, 29)),
        ((2026, 3, 31), 1, (2026, 4, 30)),
        ((2026, 12, 15), 1, (2027, 1, 15)),
        ((2026, 5, 10), 12, (2027, 5, 10)),
    ],
)
def test_adding_months_keeps_the_day_or_takes_the_months_last(
    start: tuple[int, int, int], months: int, expected: tuple[int, int, int]
) -> None:
    import datetime

    assert add_months(datetime.date(*start), months) == datetime.date(*expected)


def test_a_year_after_29_february_is_28_february() -> None:
    import datetime

    assert add_years(datetime.date(2028, 2, 29), 1) == datetime.date(2029, 2, 28)


def test_a_local_day_is_23_hours_long_when_the_clocks_go_forward() -> None:
    import datetime

    kyiv = zone("Europe/Kyiv")
    day = datetime.date(2026, 3, 29)
    assert end_of_day(day, kyiv) - start_of_day(day, kyiv) == 23 * 3600
    assert local_date(end_of_day(day, kyiv) - 1, kyiv) == day


def test_an_unknown_time_zone_is_named() -> None:
    from engine.exceptions import ConfigError

    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
