"""Issuing documents: build them through the exam's scheme, write them sealed, record them.

Two ways in: `issue_on_close` is what the server calls when a sitting closes (a KZ certificate,
a UA removal act), and it journals every file's hash; `issue_documents` is the offline command's
(`examhall results documents`), writing whatever kinds are asked for from a read-only book.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from engine import records, signatures
from engine.book import ResultsBook
from engine.documents import DEFAULT_FORMATS, Document, write_document
from engine.exceptions import ConfigError
from engine.model import Bank, Exam
from engine.plugins import SchemeRegistry
from engine.results import assemble_book, read_book, read_records

DOCUMENTS_FOLDER = "documents"


def documents_dir(data_dir: Path, exam_id: str) -> Path:
    """Where the server keeps the documents it issues: ``DATA/documents/EXAM``."""
    return data_dir / DOCUMENTS_FOLDER / exam_id


def build_all(
    registry: SchemeRegistry, exam: Exam, book: ResultsBook, kinds: Sequence[str] = ()
) -> list[Document]:
    """Every document of `kinds` (default: all the scheme produces) the book calls for."""
    scheme = registry.for_exam(exam)
    declared = [kind.kind for kind in scheme.document_kinds(exam)]
    unknown = [kind for kind in kinds if kind not in declared]
    if unknown:
        raise ConfigError(
            f"scheme {scheme.name!r} produces no {', '.join(unknown)} documents "
            f"(it produces: {', '.join(declared) or 'none'})"
        )
    documents = []
    for kind in kinds or declared:
        documents.extend(scheme.build_documents(exam, kind, book))
    return documents


def write_all(
    documents: Sequence[Document],
    folder: Path,
    signer: signatures.Signer,
    *,
    exam_id: str,
    issued_at: float,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> dict[str, list[Path]]:
    """Write each document sealed; returns the files by document name."""
    return {
        document.name: write_document(
            document, folder, signer, exam_id=exam_id, issued_at=issued_at, formats=formats
        )
        for document in documents
    }


def issue_documents(
    data_dir: Path,
    registry: SchemeRegistry,
    exam: Exam,
    out_dir: Path,
    *,
    now: float,
    kinds: Sequence[str] = (),
    formats: Sequence[str] = DEFAULT_FORMATS,
    banks: Mapping[str, Bank] | None = None,
    posts: Mapping[str, int] | None = None,
    candidate_id: str | None = None,
) -> dict[str, list[Path]]:
    """Offline: read the exam's book and write the documents asked for, sealed, to `out_dir`."""
    book = read_book(
        data_dir, exam, registry, now=now, banks=banks, posts=posts, candidate_id=candidate_id
    )
    documents = build_all(registry, exam, book, kinds)
    return write_all(
        documents,
        out_dir,
        signatures.signer_for(data_dir),
        exam_id=exam.id,
        issued_at=now,
        formats=formats,
    )


async def issue_on_close(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    candidate_id: str,
    part_id: str,
    state: str,
    now: float,
    *,
    banks: Mapping[str, Bank] | None = None,
) -> list[Path]:
    """The documents a sitting closing in `state` calls for, written and journaled.

    Returns the files written (none when the scheme issues nothing for this state).
    """
    scheme = registry.for_exam(exam)
    kinds = [kind.kind for kind in scheme.document_kinds(exam) if state in kind.issued_on_close]
    if not kinds:
        return []
    stored = await store.run(lambda connection: read_records(connection, exam.id, candidate_id))
    only_this_sitting = replace(
        stored, sittings={k: v for k, v in stored.sittings.items() if k[1] == part_id}
    )
    book = assemble_book(only_this_sitting, exam, scheme, now=now, banks=banks, rank=False)
    documents = build_all(registry, exam, book, kinds)
    folder = documents_dir(store.data_dir, exam.id)
    signer = await asyncio.to_thread(signatures.signer_for, store.data_dir)
    written = await asyncio.to_thread(
        write_all, documents, folder, signer, exam_id=exam.id, issued_at=now
    )
    sitting_id = f"{exam.id}/{candidate_id}/{part_id}"
    hashes = {
        name: {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
        for name, paths in written.items()
    }
    kind_of = {document.name: document.kind for document in documents}

    def record(connection: sqlite3.Connection) -> None:
        records.ensure_schema(connection)
        for name, files in hashes.items():
            records.insert_issued(
                connection, store, exam.id, kind_of[name], name, files, now, sitting_id
            )

    await store.run(record)
    return [path for paths in written.values() for path in paths]
