"""The working group's approval of a rating list (UA-14): by majority, recorded and sealed.

The group votes on a list as the results show it at that moment. The vote is stored with the
list's digest (positions, candidates, scores, who is unranked and why), sealed with the data
directory's key and journaled; a list that changes afterwards (an appeal upheld, a result come
in late) shows as changed since the vote, never with an approval it did not get.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence

from engine import records, signatures
from engine.appeals import appeal_policy, tally
from engine.book import RatingApproval
from engine.exceptions import RequestError
from engine.model import Exam
from engine.plugins import SchemeRegistry
from engine.results import assemble_book, read_records
from engine.schemes import RatingList


def rating_digest(rating: RatingList) -> str:
    """SHA-256 of what a vote approves: the list's places and who is left out, and why."""
    content = {
        "group": rating.group,
        "entries": [
            [entry.position, entry.tied, entry.candidate_id, entry.score]
            for entry in rating.entries
        ],
        "unranked": [list(pair) for pair in rating.unranked],
    }
    return hashlib.sha256(signatures.canonical_json(content)).hexdigest()


async def vote_on_rating(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    group: str,
    *,
    present: Sequence[str],
    votes: Mapping[str, str],
    protocol: str,
    now: float,
) -> RatingApproval:
    """Record the working group's vote on `group`'s rating list as the results stand now;
    approved when a majority of the members present vote "uphold" (quorum as for appeals)."""
    policy = appeal_policy(registry, exam)
    scheme = registry.for_exam(exam)
    if not protocol.strip():
        raise RequestError("name the meeting's protocol (number and date)", code="no_protocol")
    signer = signatures.signer_for(store.data_dir)

    def job(connection: sqlite3.Connection) -> RatingApproval:
        records.ensure_schema(connection)
        book = assemble_book(read_records(connection, exam.id), exam, scheme, now=now)
        rating = next((r for r in book.ratings if r.group == group), None)
        if rating is None:
            known = ", ".join(r.group for r in book.ratings) or "none yet"
            raise RequestError(
                f"{exam.id} has no rating list for {group!r} (lists: {known})",
                code="unknown_rating",
            )
        counted = tally(policy, book.group, present, votes)
        if not counted.has_quorum:
            raise RequestError(
                f"no quorum: {counted.present} of {counted.group_size} members present, "
                f"{counted.quorum_needed} needed ({policy.rule}, UA-14)",
                code="no_quorum",
            )
        approval = RatingApproval(
            exam.id,
            group,
            now,
            tuple(present),
            dict(votes),
            counted.group_size,
            counted.quorum_needed,
            counted.upheld,
            rating_digest(rating),
            protocol.strip(),
        )
        statement = {"statement": "rating-voted", **records.approval_json(approval)}
        seal = signer.seal(signatures.canonical_json(statement), "rating-voted")
        records.insert_rating_approval(connection, store, approval, seal.to_json())
        return approval

    return await store.run(job)


def approval_state(approval: RatingApproval | None, rating: RatingList) -> str:
    """ "approved", "rejected", "changed" (the list differs from the one voted on) or "none"."""
    if approval is None:
        return "none"
    if approval.list_sha256 != rating_digest(rating):
        return "changed"
    return "approved" if approval.approved else "rejected"
