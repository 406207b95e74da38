"""The two signatures a UA result carries (UA-9): the candidate acknowledges the result, then a
working-group member countersigns it.

Each is a statement (who, which sitting, which score, the hash of the stored result, when)
sealed with the data directory's key (`engine.signatures`), stored in ``result_signatures`` and
journaled, so a sheet's signature columns can be proven later, offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path

from engine import records, signatures
from engine.book import SignatureRecord
from engine.exceptions import RequestError
from engine.model import Exam
from engine.plugins import SchemeRegistry
from engine.results import part_result
from engine.schemes import Outcome


async def acknowledge(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    candidate_id: str,
    part_id: str,
    now: float,
) -> SignatureRecord:
    """The candidate has seen their result: record it, sealed. Idempotent."""
    return await _sign(store, registry, exam, candidate_id, part_id, "candidate", candidate_id, now)


async def countersign(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    candidate_id: str,
    part_id: str,
    member_id: str,
    now: float,
) -> SignatureRecord:
    """A working-group member confirms the acknowledged result (UA-9). Idempotent."""
    return await _sign(store, registry, exam, candidate_id, part_id, "member", member_id, now)


async def _sign(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    candidate_id: str,
    part_id: str,
    role: str,
    signer_id: str,
    now: float,
) -> SignatureRecord:
    scheme = registry.for_exam(exam)
    if role == "member" and "member" not in scheme.result_signers:
        raise RequestError(
            f"scheme {scheme.name!r} does not ask for a member's countersignature",
            code="not_signed_by_members",
        )
    try:
        exam.part(part_id)
    except KeyError:
        raise RequestError(
            f"exam {exam.id!r} has no part {part_id!r}", code="unknown_part"
        ) from None
    signer = signatures.signer_for(store.data_dir)
    sitting_id = f"{exam.id}/{candidate_id}/{part_id}"

    def job(connection: sqlite3.Connection) -> SignatureRecord:
        records.ensure_schema(connection)
        signed = records.load_signatures(connection, exam.id, candidate_id)
        existing = signed.get(sitting_id, {})
        if role in existing:
            return existing[role]
        row = connection.execute(
            "SELECT s.state, r.body FROM sittings s LEFT JOIN results r ON r.sitting_id = s.id "
            "WHERE s.id = ?",
            (sitting_id,),
        ).fetchone()
        if row is None or row[1] is None:
            raise RequestError(f"{sitting_id} has no result to sign", code="no_result")
        result = part_result(json.loads(row[1]))
        if result is None or result.outcome in (Outcome.ANNULLED, Outcome.ABSENT):
            raise RequestError(f"{sitting_id} has no score to sign", code="no_result")
        if role == "member":
            if "candidate" not in existing:
                raise RequestError(
                    f"{candidate_id} has not acknowledged the result yet; the member "
                    "countersigns after the candidate (UA-9)",
                    code="not_acknowledged",
                )
            if signer_id not in {m.id for m in records.load_group(connection, exam.id)}:
                raise RequestError(
                    f"{signer_id!r} is not a member of the working group of {exam.id}",
                    code="not_a_member",
                )
        statement = {
            "statement": f"result-signed-by-{role}",
            "sitting": sitting_id,
            "signer": signer_id,
            "score": result.score,
            "max_score": result.max_score,
            "result_sha256": hashlib.sha256(row[1].encode()).hexdigest(),
            "at": now,
        }
        seal = signer.seal(signatures.canonical_json(statement), f"result-signed-by-{role}")
        record = SignatureRecord(
            sitting_id,
            role,
            signer_id,
            now,
            seal.key_id,
            base64.b64encode(seal.signature).decode("ascii"),
            statement,
        )
        records.insert_signature(connection, store, record, seal.to_json())
        return record

    return await store.run(job)


def verify_signature(data_dir: Path, sitting_id: str, role: str) -> SignatureRecord:
    """Re-check a stored signature against the data directory's key (offline)."""
    with records.read_only(data_dir) as connection:
        stored = records.load_seal(connection, sitting_id, role)
        exam_id, candidate_id, _ = _split_sitting_id(sitting_id)
        found = records.load_signatures(connection, exam_id, candidate_id)
        found_record = found.get(sitting_id, {}).get(role)
    if stored is None or found_record is None:
        raise RequestError(f"no {role} signature is recorded for {sitting_id}", code="unsigned")
    statement, seal = stored
    signatures.check(
        signatures.Seal.from_json(json.loads(seal)),
        signatures.canonical_json(json.loads(statement)),
        expected_key=signatures.public_key_of(data_dir),
    )
    return found_record


def _split_sitting_id(sitting_id: str) -> tuple[str, str, str]:
    parts = sitting_id.split("/")
    if len(parts) != 3 or not all(parts):
        raise RequestError(
            f"{sitting_id!r} is not a sitting id (EXAM/CANDIDATE/PART)", code="bad_id"
        )
    return parts[0], parts[1], parts[2]
