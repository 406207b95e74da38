"""`examhall results | group | appeal | scheme …`: documents, signatures, appeals, schemes.

Reading commands work beside a running server (read-only connection). Commands that write
(acknowledge, countersign, approve-rating, group set, appeal file/decide) take the data
directory's lock and refuse while a server holds it (`engine.offline`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import cli_scoring
from engine.book import GROUP_ROLES, VOTES, AppealRecord, GroupMember
from engine.exceptions import ConfigError, RequestError, SignatureError
from engine.model import Bank, Exam
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.resources import bundled_banks_dir


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the results, group, appeal and scheme commands (and `score`, `analyze`)."""
    _results(commands)
    _group(commands)
    _appeal(commands)
    _scheme(commands)
    cli_scoring.register(commands)


# --- shared -----------------------------------------------------------------------------------


def add_exam_arguments(parser: argparse.ArgumentParser, *, data: bool = True) -> None:
    if data:
        parser.add_argument("--data", type=Path, required=True, help="the data directory")
    parser.add_argument("--exam", required=True, help="exam id")
    parser.add_argument("--banks", type=Path, default=bundled_banks_dir(), help="folder of banks")
    parser.add_argument(
        "--exams", type=Path, default=None, help="folder of exam files (default: BANKS/exams)"
    )


def load_exam(args: argparse.Namespace) -> tuple[Exam, dict[str, Bank]]:
    """The exam named by --exam and its banks, from --banks / --exams."""
    from engine.banks import load_banks
    from engine.exams import load_exams

    banks = load_banks(args.banks)
    setups = load_exams(args.exams or args.banks / "exams", banks)
    if args.exam not in setups:
        known = ", ".join(sorted(setups)) or "none"
        raise ConfigError(
            f"no exam {args.exam!r} in {args.exams or args.banks / 'exams'} ({known})"
        )
    return setups[args.exam].exam, banks


def registry() -> SchemeRegistry:
    return SchemeRegistry(create_plugin_manager())


def parse_posts(values: list[str] | None) -> dict[str, int]:
    """``--posts "OFFICE=N"`` options as a mapping."""
    posts: dict[str, int] = {}
    for value in values or []:
        office, separator, count = value.rpartition("=")
        if not separator or not office or not count.isdigit():
            raise ConfigError(f"--posts takes OFFICE=N, got {value!r}")
        posts[office] = int(count)
    return posts


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# --- results ----------------------------------------------------------------------------------


def _results(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    results = commands.add_parser("results", help="results documents, signatures, verification")
    sub = results.add_subparsers(title="results")

    documents = sub.add_parser(
        "documents", help="write the exam's documents (sheets, ratings, certificates…), sealed"
    )
    add_exam_arguments(documents)
    documents.add_argument("--out", type=Path, required=True, help="folder to write into")
    documents.add_argument(
        "--kind", action="append", default=None, help="only this kind (repeatable)"
    )
    documents.add_argument(
        "--format",
        default="html,csv",
        help="comma-separated: html, csv, pdf (pdf is printed by Chromium)",
    )
    documents.add_argument("--candidate", default=None, help="only this candidate's papers")
    documents.add_argument("--posts", action="append", help='posts per office: "OFFICE=N"')
    documents.set_defaults(run=_documents)

    approve = sub.add_parser(
        "approve-rating",
        help="record the working group's vote on a rating list as it stands (UA-14)",
    )
    add_exam_arguments(approve)
    approve.add_argument("--office", required=True, help="the rating group (local office)")
    approve.add_argument("--present", required=True, help="member ids present, comma-separated")
    for vote, meaning in (("uphold", "for"), ("reject", "against"), ("abstain", "abstaining")):
        approve.add_argument(f"--{vote}", default="", help=f"member ids voting {meaning}")
    approve.add_argument("--protocol", required=True, help="the meeting's protocol: number, date")
    approve.set_defaults(run=_approve_rating)

    show = sub.add_parser("show", help="the exam's combined results and rating lists")
    add_exam_arguments(show)
    show.add_argument("--posts", action="append", help='posts per office: "OFFICE=N"')
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_show)

    verify = sub.add_parser(
        "verify", help="check sealed documents offline; exit 1 if any does not verify"
    )
    verify.add_argument("files", type=Path, nargs="+")
    verify.add_argument(
        "--data", type=Path, default=None, help="also require the seal of this data directory's key"
    )
    verify.set_defaults(run=_verify)

    key = sub.add_parser("key", help="print the data directory's public key and its id")
    key.add_argument("--data", type=Path, required=True)
    key.set_defaults(run=_key)

    for name, helptext in (
        ("acknowledge", "record that the candidate has seen the result (UA-9)"),
        ("countersign", "record a working-group member's countersignature (UA-9)"),
    ):
        command = sub.add_parser(name, help=helptext)
        add_exam_arguments(command)
        command.add_argument("--candidate", required=True)
        command.add_argument("--part", required=True)
        if name == "countersign":
            command.add_argument("--member", required=True)
        command.set_defaults(run=_sign, role=name)


def _documents(args: argparse.Namespace) -> int:
    from engine.issuing import issue_documents

    exam, banks = load_exam(args)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    written = issue_documents(
        args.data,
        registry(),
        exam,
        args.out,
        now=time.time(),
        kinds=args.kind or (),
        formats=formats,
        banks=banks,
        posts=parse_posts(args.posts),
        candidate_id=args.candidate,
    )
    for paths in written.values():
        for path in paths:
            print(path)
    print(f"{len(written)} document(s) written to {args.out}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from engine.results import read_book

    exam, banks = load_exam(args)
    book = read_book(
        args.data, exam, registry(), now=time.time(), banks=banks, posts=parse_posts(args.posts)
    )
    if args.json:
        print_json(
            {
                "exam": exam.id,
                "results": [result.to_json() for result in book.exam_results],
                "ratings": [
                    {
                        "group": rating.group,
                        "tie_rule": rating.tie_rule,
                        "entries": [
                            {
                                "position": e.position,
                                "candidate": e.candidate_id,
                                "score": e.score,
                                "parts": dict(e.part_scores),
                                "tied": e.tied,
                            }
                            for e in rating.entries
                        ],
                        "unranked": [{"candidate": c, "why": w} for c, w in rating.unranked],
                    }
                    for rating in book.ratings
                ],
            }
        )
        return 0
    print(f"{exam.id}: {len(book.exam_results)} candidate(s) with sittings")
    outcomes: dict[str, int] = {}
    for result in book.exam_results:
        outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for rating in book.ratings:
        posts = book.posts.get(rating.group)
        print(f"\n{rating.group}" + (f" ({posts} posts)" if posts is not None else ""))
        selection = rating.top(posts) if posts is not None else None
        for entry in rating.entries:
            mark = ""
            if selection is not None and entry.candidate_id in selection.chosen:
                mark = "  ← post"
            elif selection is not None and entry.candidate_id in selection.tied_at_boundary:
                mark = "  ← tied at the last post: the group decides"
            print(
                f"  {entry.position:>4}{'=' if entry.tied else ' '} "
                f"{entry.score:>7.2f}  {book.candidate(entry.candidate_id).full_name}{mark}"
            )
        for candidate_id, why in rating.unranked:
            print(f"     —          {book.candidate(candidate_id).full_name}: {why}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from engine import signatures

    expected = signatures.public_key_of(args.data) if args.data else None
    failures = 0
    for path in args.files:
        try:
            verified = signatures.verify_file(path, expected_key=expected)
        except SignatureError as error:
            failures += 1
            print(f"FAILED {path}: {error}")
            continue
        meta = verified.seal.meta
        print(
            f"ok     {path}: {meta.get('kind', '?')} {meta.get('name', '')} of exam "
            f"{meta.get('exam', '?')}, sealed by key {verified.seal.key_id}"
            + ("" if expected else " (compare this key id with the one the service publishes)")
        )
    return 1 if failures else 0


def _key(args: argparse.Namespace) -> int:
    from engine import signatures

    signer = signatures.signer_for(args.data)
    print(f"key id  {signer.key_id}")
    print(f"ed25519 {base64.b64encode(signer.public_key).decode('ascii')}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from engine.offline import offline_store
    from engine.result_signatures import acknowledge, countersign

    exam, _ = load_exam(args)
    schemes = registry()

    async def run() -> Any:
        async with offline_store(args.data) as store:
            if args.role == "acknowledge":
                return await acknowledge(
                    store, schemes, exam, args.candidate, args.part, time.time()
                )
            return await countersign(
                store, schemes, exam, args.candidate, args.part, args.member, time.time()
            )

    record = _refusals(lambda: asyncio.run(run()))
    if record is None:
        return 1
    print(f"{record.role} signature of {record.sitting_id} by {record.signer}: {record.key_id}")
    return 0


def _refusals(call: Any) -> Any:
    """Run `call`; print a refusal (the client's mistake) plainly and return None."""
    try:
        return call()
    except RequestError as error:
        print(f"refused: {error.message}", file=sys.stderr)
        return None


# --- the working group ------------------------------------------------------------------------


def _group(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("group", help="the working group that decides appeals (UA-2)")
    sub = group.add_subparsers(title="group")
    set_ = sub.add_parser("set", help="replace the group from a CSV file: id,full_name,role")
    add_exam_arguments(set_)
    set_.add_argument("file", type=Path)
    set_.set_defaults(run=_group_set)
    show = sub.add_parser("show", help="list the group")
    show.add_argument("--data", type=Path, required=True)
    show.add_argument("--exam", required=True)
    show.set_defaults(run=_group_show)


def read_group_file(path: Path) -> list[GroupMember]:
    """Members from a CSV with header id,full_name,role; every bad row is reported at once."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    rows = list(csv.DictReader(text.splitlines()))
    problems = []
    members: list[GroupMember] = []
    for number, row in enumerate(rows, start=2):
        member_id, name, role = (row.get(k, "") or "" for k in ("id", "full_name", "role"))
        if not member_id.strip() or not name.strip():
            problems.append(f"line {number}: id and full_name are required")
        elif role not in GROUP_ROLES:
            problems.append(f"line {number}: role {role!r} is not one of {', '.join(GROUP_ROLES)}")
        else:
            members.append(GroupMember(member_id.strip(), name.strip(), role))
    ids = [m.id for m in members]
    problems += [f"member id {i!r} appears twice" for i in sorted(set(ids)) if ids.count(i) > 1]
    for role in ("head", "secretary"):
        count = sum(1 for m in members if m.role == role)
        if count != 1:
            problems.append(f"the group needs exactly one {role}, this file has {count}")
    if problems:
        raise ConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return members


def _group_set(args: argparse.Namespace) -> int:
    from engine import records
    from engine.offline import offline_store

    members = read_group_file(args.file)
    exam, _ = load_exam(args)

    async def run() -> None:
        async with offline_store(args.data) as store:

            def job(connection: Any) -> None:
                records.ensure_schema(connection)
                records.replace_group(connection, store, exam.id, members, time.time())

            await store.run(job)

    asyncio.run(run())
    print(f"working group of {exam.id}: {len(members)} member(s)")
    return 0


def _group_show(args: argparse.Namespace) -> int:
    from engine import records

    with records.read_only(args.data) as connection:
        members = records.load_group(connection, args.exam)
    for member in sorted(members, key=lambda m: (GROUP_ROLES.index(m.role), m.id)):
        print(f"{member.role:<10} {member.id:<16} {member.full_name}")
    print(f"{len(members)} member(s)")
    return 0


# --- appeals ----------------------------------------------------------------------------------


def _appeal(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    appeal = commands.add_parser("appeal", help="appeals: file, decide, list (UA-16)")
    sub = appeal.add_subparsers(title="appeal")

    file = sub.add_parser("file", help="file an appeal (by the candidate personally, on time)")
    add_exam_arguments(file)
    file.add_argument("--candidate", required=True)
    file.add_argument("--by", required=True, help="who files it: must be the candidate")
    file.add_argument("--subject", required=True, help="result, non-admission (or removal)")
    file.add_argument("--part", default=None, help="the test appealed (for a result)")
    file.add_argument("--grounds", required=True)
    file.set_defaults(run=_appeal_file)

    decide = sub.add_parser("decide", help="record the working group's decision and votes")
    add_exam_arguments(decide)
    decide.add_argument("--number", type=int, required=True)
    decide.add_argument("--present", required=True, help="member ids present, comma-separated")
    for vote in VOTES:
        decide.add_argument(f"--{vote}", default="", help=f"member ids voting {vote}")
    decide.add_argument("--decision", required=True, help="the decision's reasoning")
    decide.add_argument("--new-score", type=float, default=None)
    decide.add_argument("--candidate-present", action="store_true")
    decide.set_defaults(run=_appeal_decide)

    listing = sub.add_parser("list", help="the exam's appeals")
    listing.add_argument("--data", type=Path, required=True)
    listing.add_argument("--exam", required=True)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_appeal_list)


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _appeal_file(args: argparse.Namespace) -> int:
    from engine.appeals import file_appeal
    from engine.offline import offline_store

    exam, _ = load_exam(args)
    schemes = registry()

    async def run() -> Any:
        async with offline_store(args.data) as store:
            return await file_appeal(
                store,
                schemes,
                exam,
                candidate_id=args.candidate,
                filed_by=args.by,
                subject=args.subject,
                grounds=args.grounds,
                part_id=args.part,
                now=time.time(),
            )

    appeal = _refusals(lambda: asyncio.run(run()))
    if appeal is None:
        return 1
    print(f"appeal {appeal.number} filed; the working group decides by {_when(appeal.decide_by)}")
    return 0


def _votes(args: argparse.Namespace) -> dict[str, str]:
    votes: dict[str, str] = {}
    for vote in VOTES:
        for member in _ids(getattr(args, vote)):
            if member in votes:
                raise ConfigError(f"member {member!r} votes twice")
            votes[member] = vote
    return votes


def _approve_rating(args: argparse.Namespace) -> int:
    from engine.offline import offline_store
    from engine.rating_approval import vote_on_rating

    exam, _ = load_exam(args)
    schemes = registry()
    votes = _votes(args)

    async def run() -> Any:
        async with offline_store(args.data) as store:
            return await vote_on_rating(
                store,
                schemes,
                exam,
                args.office,
                present=_ids(args.present),
                votes=votes,
                protocol=args.protocol,
                now=time.time(),
            )

    approval = _refusals(lambda: asyncio.run(run()))
    if approval is None:
        return 1
    outcome = "approved" if approval.approved else "not approved"
    print(f"rating list {approval.group}: {outcome}, the vote recorded ({approval.list_sha256})")
    return 0


def _appeal_decide(args: argparse.Namespace) -> int:
    from engine.appeals import decide_appeal
    from engine.offline import offline_store

    exam, _ = load_exam(args)
    schemes = registry()
    votes = _votes(args)

    async def run() -> Any:
        async with offline_store(args.data) as store:
            return await decide_appeal(
                store,
                schemes,
                exam,
                args.number,
                present=_ids(args.present),
                votes=votes,
                decision=args.decision,
                new_score=args.new_score,
                candidate_present=args.candidate_present,
                now=time.time(),
            )

    appeal = _refusals(lambda: asyncio.run(run()))
    if appeal is None:
        return 1
    change = ""
    if appeal.score_after is not None:
        change = f"; score {appeal.score_before:g} → {appeal.score_after:g}"
    print(f"appeal {appeal.number}: {appeal.status}{change}")
    return 0


def _appeal_list(args: argparse.Namespace) -> int:
    from engine import records

    with records.read_only(args.data) as connection:
        appeals = records.load_appeals(connection, args.exam)
    if args.json:
        print_json([_appeal_json(a) for a in appeals])
        return 0
    for a in appeals:
        print(
            f"{a.number:>4} {a.status:<9} {a.candidate_id:<20} {a.subject:<14} "
            f"{a.part_id or '':<14} filed {_when(a.filed_at)}"
        )
    print(f"{len(appeals)} appeal(s)")
    return 0


def _appeal_json(appeal: AppealRecord) -> dict[str, Any]:
    return dict(asdict(appeal))


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(at))


# --- schemes ----------------------------------------------------------------------------------


def _scheme(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scheme = commands.add_parser("scheme", help="the installed scoring schemes")
    sub = scheme.add_subparsers(title="scheme")
    listing = sub.add_parser("list", help="every registered scheme and the plugin behind it")
    listing.set_defaults(run=_scheme_list)
    check = sub.add_parser("check", help="check an exam against its scheme's expected parts")
    add_exam_arguments(check, data=False)
    check.set_defaults(run=_scheme_check)


def _scheme_list(args: argparse.Namespace) -> int:
    schemes = registry()
    for name in schemes.names():
        scheme = schemes.scheme(name)
        print(f"{name:<20} {scheme.plugin:<28} {scheme.title}")
    return 0


def _scheme_check(args: argparse.Namespace) -> int:
    exam, _ = load_exam(args)
    problems = registry().for_exam(exam).check_exam(exam)
    for problem in problems:
        print(problem)
    if problems:
        print(
            f"{exam.id}: {len(problems)} departure(s) from scheme {exam.scheme!r}", file=sys.stderr
        )
        return 1
    print(f"{exam.id}: as scheme {exam.scheme!r} expects")
    return 0
