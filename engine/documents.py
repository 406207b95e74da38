"""Documents as data, and their two renderings: CSV for spreadsheets, printable HTML for paper.

A scheme decides what a document says (`Scheme.build_documents` returns `Document`s: a title,
labelled fields, a table, notes and the lines people sign); this module decides how it looks
and seals every file it writes with the data directory's key (`engine.signatures`), so a
printed or mailed sheet can be checked later with `examhall results verify`.

CSV layout: the fields as two-column rows, an empty row, then the table's header and rows.
UTF-8 with a byte-order mark, so spreadsheet programs read Cyrillic correctly.
"""

from __future__ import annotations

import csv
import html
import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import signatures
from engine.pdf import print_pdf

FORMATS = ("html", "csv", "pdf")
DEFAULT_FORMATS = ("html", "csv")
"""PDF is printed by Chromium (`engine.pdf`), so it is asked for, not written by default."""

_TRANSLITERATION = {
    **dict(
        zip("абвгґдезийклмнопрстуфыэәғқңөұүһі", "abvhgdezyiklmnoprstufyeagqnouuhi", strict=True)
    ),
    **{"є": "ie", "ж": "zh", "ї": "i", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch"},
    **{"ю": "iu", "я": "ia", "ё": "io", "ь": "", "ъ": "", "'": "", "’": ""},
}
"""Enough of Ukrainian, Russian and Kazakh to make readable file names from office names."""


@dataclass(frozen=True, slots=True)
class SignatureLine:
    """A place to sign on paper, with the electronic signature already recorded, if any."""

    role: str
    name: str = ""
    recorded: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A document's content, independent of format. `name` becomes the file name."""

    kind: str
    name: str
    language: str
    title: str
    subtitle: tuple[str, ...] = ()
    reference: str = ""
    """A line above the title, e.g. which annex of which order the form follows."""
    fields: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()
    signature_lines: tuple[SignatureLine, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.name):
            raise ValueError(f"document name {self.name!r} must be lowercase a-z, 0-9, . _ -")
        for number, row in enumerate(self.rows, start=1):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"{self.name}: row {number} has {len(row)} cells for "
                    f"{len(self.columns)} columns"
                )


def slug(*parts: str) -> str:
    """A file-name-safe, readable rendering of `parts` (Cyrillic transliterated)."""
    text = "-".join(parts).lower()
    latin = "".join(_TRANSLITERATION.get(char, char) for char in text)
    return re.sub(r"[^a-z0-9]+", "-", latin).strip("-") or "document"


def render_csv(document: Document) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for label, value in document.fields:
        writer.writerow([label, value])
    if document.fields and document.columns:
        writer.writerow([])
    if document.columns:
        writer.writerow(document.columns)
        writer.writerows(document.rows)
    return buffer.getvalue().encode("utf-8-sig")


def render_html(document: Document, *, key_id: str = "") -> bytes:
    """A self-contained A4 page: no scripts, no external files, prints as it looks."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{e(document.language)}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(document.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    if document.reference:
        out.append(f'<p class="reference">{e(document.reference)}</p>')
    out.append(f"<h1>{e(document.title)}</h1>")
    out.extend(f'<p class="subtitle">{e(line)}</p>' for line in document.subtitle)
    if document.fields:
        out.append('<table class="fields">')
        out.extend(
            f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in document.fields
        )
        out.append("</table>")
    if document.columns:
        out.append('<table class="grid"><thead><tr>')
        out.extend(f"<th>{e(column)}</th>" for column in document.columns)
        out.append("</tr></thead><tbody>")
        for row in document.rows:
            out.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
        out.append("</tbody></table>")
    out.extend(f'<p class="note">{e(note)}</p>' for note in document.notes)
    if document.signature_lines:
        out.append('<table class="signatures">')
        for line in document.signature_lines:
            out.append(
                f'<tr><th>{e(line.role)}</th><td class="blank"></td>'
                f'<td>{e(line.name)}</td><td class="recorded">{e(line.recorded)}</td></tr>'
            )
        out.append("</table>")
    if key_id:
        out.append(
            f'<p class="seal">Electronic seal: examhall key {e(key_id)}. '
            f"Check this file with: examhall results verify FILE</p>"
        )
    out += ["</body>", "</html>", ""]
    return "\n".join(out).encode("utf-8")


def write_document(
    document: Document,
    folder: Path,
    signer: signatures.Signer,
    *,
    exam_id: str,
    issued_at: float,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[Path]:
    """Write `document` in each format, sealed; returns the files written (seals included)."""
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "exam": exam_id,
        "kind": document.kind,
        "name": document.name,
        "issued_at": round(issued_at, 3),
    }
    written: list[Path] = []
    for fmt in formats:
        path = folder / f"{document.name}.{fmt}"
        if fmt == "html":
            page = render_html(document, key_id=signer.key_id)
            path.write_bytes(signatures.seal_html(page, signer, {**meta, "format": fmt}))
            written.append(path)
        elif fmt == "pdf":
            with tempfile.TemporaryDirectory(prefix="examhall-page-") as scratch:
                page_path = Path(scratch) / f"{document.name}.html"
                page_path.write_bytes(render_html(document, key_id=signer.key_id))
                print_pdf(page_path, path)
            written.append(path)
            written.append(signatures.write_detached(path, signer, {**meta, "format": fmt}))
        else:
            path.write_bytes(render_csv(document))
            written.append(path)
            written.append(signatures.write_detached(path, signer, {**meta, "format": fmt}))
    return written


_CSS = """
@page { size: A4; margin: 18mm 15mm; }
body { font-family: "DejaVu Serif", "Times New Roman", serif; font-size: 11pt; color: #000;
       max-width: 190mm; margin: 0 auto; }
h1 { font-size: 14pt; text-align: center; text-transform: uppercase; margin: 6mm 0 2mm; }
.reference { text-align: right; font-size: 9pt; margin-left: 50%; }
.subtitle { text-align: center; margin: 1mm 0; }
table { border-collapse: collapse; width: 100%; margin: 4mm 0; }
.fields th { text-align: left; font-weight: normal; width: 40%; padding: 1mm 2mm 1mm 0;
             vertical-align: top; }
.fields td { padding: 1mm 0; font-weight: bold; }
.grid th, .grid td { border: 0.3mm solid #000; padding: 1mm 1.5mm; vertical-align: top; }
.grid th { font-weight: normal; font-size: 9.5pt; }
.grid tr { page-break-inside: avoid; }
.note { font-size: 9.5pt; margin: 1mm 0; }
.signatures { margin-top: 10mm; }
.signatures th { text-align: left; font-weight: normal; width: 35%; padding: 4mm 0 0; }
.signatures .blank { border-bottom: 0.3mm solid #000; width: 25%; }
.signatures td { padding: 4mm 2mm 0; }
.signatures .recorded { font-size: 8pt; }
.seal { font-size: 8pt; color: #444; margin-top: 8mm; border-top: 0.2mm solid #999;
        padding-top: 1mm; }
"""
