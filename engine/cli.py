"""`examhall …`: serve, demo, simulate, banks, forms and the audit verifier."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from engine.exceptions import BankError, ExamhallError, JournalError
from engine.resources import bundled_banks_dir
from engine.server.tuning import LOOPS

DEFAULT_PORT = 8470
BACKLOG = 4096
"""Pending connections the listening socket queues: a whole room's start at 9:00 must not
meet dropped SYNs and their 1 s, 3 s, 7 s retries (the kernel caps it at somaxconn)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return int(args.run(args) or 0)
    except BankError as error:
        print(f"examhall: {error}", file=sys.stderr)
        return 1
    except ExamhallError as error:
        print(f"examhall: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="examhall", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    for name, helptext, demo in (
        ("serve", "run the server on a data directory", False),
        ("demo", "run the server with the demo exams kz-demo and ua-demo", True),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=DEFAULT_PORT)
        command.add_argument(
            "--data",
            type=Path,
            default=Path("examhall-data"),
            help="data directory (created if missing)",
        )
        command.add_argument(
            "--banks",
            type=Path,
            default=bundled_banks_dir(),
            help="folder of banks (default: the demo banks)",
        )
        command.add_argument(
            "--exams", type=Path, default=None, help="folder of exam files (default: BANKS/exams)"
        )
        command.add_argument(
            "--media-retention-days",
            type=float,
            default=None,
            help="delete the media of sittings closed this long ago (default: keep it)",
        )
        command.add_argument(
            "--uploads-at-once",
            type=int,
            default=None,
            metavar="N",
            help="media uploads under way beyond which new ones are told to come back later "
            "(503 busy), so answers go first (default: 256)",
        )
        command.add_argument(
            "--media-port",
            type=int,
            default=None,
            metavar="P",
            help="port of the media process, which serves the pages' recording uploads beside "
            "this one (default: --port + 1; 0: any free port)",
        )
        command.add_argument(
            "--media-in-process",
            action="store_true",
            help="serve the recording uploads from this process, on --port, with no media process",
        )
        command.add_argument(
            "--media-url",
            default=None,
            metavar="URL",
            help="the media socket's address as pages reach it, e.g. behind a proxy "
            "(default: ws://HOST-SIGNED-IN-AT:MEDIA-PORT/ws/media)",
        )
        command.add_argument(
            "--access-log",
            metavar="FILE",
            default=None,
            help="log every HTTP request to FILE ('-' for standard error); off by default, "
            "since a proxy in front usually keeps one and each line costs the loop",
        )
        command.add_argument(
            "--event-loop",
            choices=LOOPS,
            default="auto",
            help="auto: uvloop when installed (the default), else asyncio's own",
        )
        command.set_defaults(run=_serve, demo=demo)

    simulate = commands.add_parser("simulate", help="run simulated candidates through an exam")
    simulate.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    simulate.add_argument("--exam", required=True)
    simulate.add_argument("--candidates", type=int, default=100)
    simulate.add_argument(
        "--think-ms", type=float, default=0.0, help="mean pause before each answer"
    )
    simulate.add_argument("--concurrency", type=int, default=1000)
    simulate.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="CSV of candidate,code (default: the demo server's roster)",
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--json", action="store_true", help="print the summary as JSON")
    simulate.set_defaults(run=_simulate)

    bank = commands.add_parser("bank", help="check and make banks").add_subparsers(title="bank")
    validate = bank.add_parser("validate", help="check a bank folder; exit 1 listing problems")
    validate.add_argument("path", type=Path)
    validate.set_defaults(run=_bank_validate)
    synth = bank.add_parser("synth", help="write a large synthetic bank for load tests")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--id", default="synthetic")
    synth.add_argument("--items", type=int, default=10_000)
    synth.add_argument("--languages", default="kk,ru")
    synth.add_argument("--dimension", default="act")
    synth.add_argument("--values", default="a,b,c,d,e")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_bank_synth)

    form = commands.add_parser("form", help="forms").add_subparsers(title="form")
    show = form.add_parser("show", help="regenerate a candidate's form with its key (auditors)")
    show.add_argument("--data", type=Path, required=True)
    show.add_argument("--exam", required=True)
    show.add_argument("--candidate", required=True)
    show.add_argument("--part", default=None)
    show.add_argument("--language", default=None)
    show.add_argument("--banks", type=Path, default=bundled_banks_dir())
    show.add_argument("--exams", type=Path, default=None)
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_form_show)

    fixation = commands.add_parser("fixation", help="the audio-video record")
    fixation_commands = fixation.add_subparsers(title="fixation")
    check = fixation_commands.add_parser(
        "verify", help="check every recorded upload against the log; exit 1 naming each bad one"
    )
    check.add_argument("--data", type=Path, required=True)
    check.set_defaults(run=_fixation_verify)
    export = fixation_commands.add_parser(
        "export",
        help="write one sitting's recording (one playable file per stream), its camera stills "
        "and a manifest into a folder, each piece checked against the log",
    )
    export.add_argument("--data", type=Path, required=True)
    export.add_argument("--sitting", required=True, help="the sitting's id")
    export.add_argument("--out", type=Path, required=True, help="the folder to write into")
    export.set_defaults(run=_fixation_export)

    audit = commands.add_parser("audit", help="the event log").add_subparsers(title="audit")
    verify = audit.add_parser(
        "verify",
        help="prove the event log is intact; exit 1 naming the "
        "first changed, removed or reordered event",
    )
    verify.add_argument("--data", type=Path, required=True)
    verify.set_defaults(run=_audit_verify)
    __import__("engine.cli_results").cli_results.register(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from engine.latency import CollectorPauses
    from engine.server import keys, tuning
    from engine.server.app import create_app
    from engine.server.config import ServerConfig

    config = ServerConfig(
        data_dir=args.data.resolve(),
        banks_dir=args.banks,
        exams_dir=args.exams or args.banks / "exams",
        demo=args.demo,
        media_retention_days=args.media_retention_days,
        media_port=None if args.media_in_process else _media_port(args),
        media_host=args.host,
        media_public_url=args.media_url,
        **({"uploads_at_once": args.uploads_at_once} if args.uploads_at_once else {}),
    )
    if args.demo:
        print(
            f"examhall demo on http://{args.host}:{args.port}/  (data in {config.data_dir})\n"
            f"  access codes: {config.data_dir / 'access-codes'}\n"
            f"  simulate:     examhall simulate --url http://{args.host}:{args.port} "
            f"--exam kz-demo --candidates 1000 --json",
            flush=True,
        )
    app = create_app(config)
    app[keys.COLLECTOR] = CollectorPauses()
    app.cleanup_ctx.append(tuning.tend_collector)  # after create_app's: the exams are loaded
    tuning.share_gil()
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        handle_signals=True,
        shutdown_timeout=5,
        backlog=BACKLOG,
        access_log=_access_logger(args.access_log),
        loop=tuning.new_event_loop(args.event_loop),
    )
    return 0


def _media_port(args: argparse.Namespace) -> int:
    return int(args.port) + 1 if args.media_port is None else int(args.media_port)


def _access_logger(target: str | None) -> logging.Logger | None:
    """aiohttp's access log, written to `target` ('-': standard error), or None for none."""
    if target is None:
        return None
    logger = logging.getLogger("aiohttp.access")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.StreamHandler() if target == "-" else logging.FileHandler(target)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger


def _simulate(args: argparse.Namespace) -> int:
    from engine.simulate import read_roster, simulate

    roster = read_roster(args.roster) if args.roster else None
    summary = asyncio.run(
        simulate(
            args.url,
            args.exam,
            args.candidates,
            roster=roster,
            think_s=args.think_ms / 1000,
            concurrency=args.concurrency,
            seed=args.seed,
        )
    )
    if args.json:
        print(summary.to_json())
    else:
        print(
            f"{summary.completed}/{summary.sittings} sittings completed, "
            f"{summary.answers_acked}/{summary.answers_sent} answers acknowledged, "
            f"{summary.answers_lost} lost, {summary.errors} errors in {summary.seconds} s"
        )
    return 0 if summary.errors == 0 and summary.answers_lost == 0 else 1


def _bank_validate(args: argparse.Namespace) -> int:
    from engine.banks import validate_bank

    problems = validate_bank(args.path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {args.path}", file=sys.stderr)
        return 1
    from engine.banks import load_bank

    bank = load_bank(args.path)
    print(f"{bank.id} {bank.version}: {len(bank.items)} items in {', '.join(bank.languages)}; ok")
    return 0


def _bank_synth(args: argparse.Namespace) -> int:
    from engine.banks import write_synthetic_bank

    path = write_synthetic_bank(
        args.out,
        bank_id=args.id,
        item_count=args.items,
        languages=args.languages.split(","),
        dimension=args.dimension,
        values=args.values.split(","),
        seed=args.seed,
    )
    print(f"wrote {args.items} items to {path}")
    return 0


def _form_show(args: argparse.Namespace) -> int:
    import json

    from engine.banks import load_banks
    from engine.exams import load_exams
    from engine.forms import assemble_form, shown_key
    from engine.store.sqlite import SQLiteStore, read_exam_secret

    secret = read_exam_secret(args.data / SQLiteStore.FILE_NAME, args.exam)
    banks = load_banks(args.banks)
    setups = load_exams(args.exams or args.banks / "exams", banks)
    if args.exam not in setups:
        print(f"examhall: no exam {args.exam!r}", file=sys.stderr)
        return 2
    exam = setups[args.exam].exam
    parts = [exam.part(args.part)] if args.part else list(exam.parts)
    language = args.language or exam.languages[0]
    out = []
    for part in parts:
        bank = banks[part.bank_id]
        form = assemble_form(secret, exam, part, bank, args.candidate)
        rows = []
        for number, form_item in enumerate(form.items, start=1):
            item = bank.by_id[form_item.item_id]
            text = item.texts[language]
            key = shown_key(form_item, item)
            rows.append(
                {
                    "n": number,
                    "item": item.id,
                    "tags": dict(item.tags),
                    "stem": text.stem,
                    "options": [text.options[i] for i in form_item.option_order],
                    "key": key,
                }
            )
        out.append(
            {
                "exam": exam.id,
                "part": part.id,
                "candidate": args.candidate,
                "bank": f"{bank.id} {bank.version}",
                "items": rows,
            }
        )
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    for part_form in out:
        print(
            f"# {part_form['exam']} / {part_form['part']} / {part_form['candidate']} "
            f"({part_form['bank']})"
        )
        for row in part_form["items"]:
            letters = "ABCDEFGH"
            print(f"{row['n']:3}. [{row['item']}] {row['stem']}")
            for index, option in enumerate(row["options"]):
                mark = "*" if index == row["key"] else " "
                print(f"      {mark} {letters[index]}) {option}")
    return 0


def _fixation_export(args: argparse.Namespace) -> int:
    from engine.recording import export_recording
    from engine.store.proctoring import read_media
    from engine.store.sqlite import SQLiteStore

    database = args.data / SQLiteStore.FILE_NAME
    if not database.exists():
        print(f"examhall: no database at {database}", file=sys.stderr)
        return 2
    records = list(read_media(database, args.sitting))
    if not records:
        print(f"examhall: no media recorded for sitting {args.sitting}", file=sys.stderr)
        return 2
    exported = export_recording(args.data, records, args.out)
    for path in exported.files:
        print(path)
    for problem in exported.problems:
        print(f"BAD: {problem}", file=sys.stderr)
    return 1 if exported.problems else 0


def _fixation_verify(args: argparse.Namespace) -> int:
    from engine.fixation import check_media_folder, verify_files
    from engine.store.proctoring import read_media, read_media_journal
    from engine.store.sqlite import SQLiteStore

    database = args.data / SQLiteStore.FILE_NAME
    if not database.exists():
        print(f"examhall: no database at {database}", file=sys.stderr)
        return 2
    records = list(read_media(database))
    logged = read_media_journal(database)
    problems = [str(problem) for problem in verify_files(args.data, records)]
    for record in records:
        if logged.get((record.sitting_id, record.kind.value, record.seq)) != record.sha256:
            problems.append(
                f"{record.sitting_id} {record.kind} {record.seq} ({record.path}): "
                "the record differs from the journal: the database was edited"
            )
    folder = check_media_folder(args.data, SQLiteStore.SEGMENTS, records)
    problems += [f"{stray}: a file no record accounts for" for stray in folder.strays]
    for problem in problems:
        print(f"BAD: {problem}", file=sys.stderr)
    if problems:
        return 1
    purged = sum(1 for record in records if record.purged)
    print(f"intact: {len(records) - purged} uploads match the log ({purged} purged by retention)")
    if folder.unrecorded_bytes:
        print(
            f"{folder.unrecorded_bytes} bytes in {folder.segments_with_unrecorded} segment(s) "
            "belong to no record: uploads sent again or refused, or written before a stop "
            "kept them from their commit; none was acknowledged"
        )
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from engine import journal
    from engine.store.sqlite import SQLiteStore, read_journal

    database = args.data / SQLiteStore.FILE_NAME
    if not database.exists():
        print(f"examhall: no database at {database}", file=sys.stderr)
        return 2
    try:
        report = journal.verify(read_journal(database), journal.read_head(args.data))
    except JournalError as error:
        print(f"TAMPERED: {error}", file=sys.stderr)
        return 1
    print(
        f"intact: {report.events} events over {report.sittings} sittings; "
        f"head {report.head.seq} {report.head.chain.hex()}; merkle root {report.root.hex()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
