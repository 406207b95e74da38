"""`examhall score` and `examhall analyze`: re-score responses, and analyse a part's items.

Both read stored responses from a data directory (read-only, the server may run) or take
responses from a JSON-lines file in the format of docs/scoring-formats.md. `score` writes
nothing unless given ``--confirm`` and a ``--reason``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.exceptions import ConfigError

if TYPE_CHECKING:
    from engine.analysis import Analysis


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from engine.cli_results import add_exam_arguments

    score = commands.add_parser(
        "score", help="re-score stored responses (show the changes; write only with --confirm)"
    )
    add_exam_arguments(score, data=False)
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="re-score this data directory's sittings")
    source.add_argument("--responses", type=Path, help="score responses from a .jsonl file")
    score.add_argument("--part", action="append", default=None, help="only this part")
    score.add_argument("--confirm", action="store_true", help="write the changed results")
    score.add_argument("--reason", default="", help="why (journaled with every change)")
    score.add_argument("--json", action="store_true", help="print JSON lines")
    score.set_defaults(run=_score)

    analyze = commands.add_parser(
        "analyze", help="item analysis of a part: p-value, discrimination, distractors, KR-20"
    )
    add_exam_arguments(analyze, data=False)
    source = analyze.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="analyse this data directory's sittings")
    source.add_argument("--responses", type=Path, help="analyse responses from a .jsonl file")
    analyze.add_argument("--part", required=True)
    analyze.add_argument("--format", choices=("text", "json", "csv"), default="text")
    analyze.add_argument("--out", type=Path, default=None, help="write here instead of stdout")
    analyze.set_defaults(run=_analyze)


def _score(args: argparse.Namespace) -> int:
    from engine.cli_results import load_exam, registry
    from engine.rescoring import read_responses, rescore_stored, score_responses

    exam, banks = load_exam(args)
    schemes = registry()
    if args.responses is not None:
        if args.confirm:
            raise ConfigError("--confirm writes to a data directory; scoring a file writes nothing")
        responses = read_responses(args.responses)
        if args.part:
            responses = [r for r in responses if r.part_id in args.part]
        for result in score_responses(schemes, exam, banks, responses):
            print(json.dumps({"exam": exam.id, **result.to_json()}, ensure_ascii=False))
        return 0
    rescored = rescore_stored(args.data, schemes, exam, banks, args.part or ())
    changed = [r for r in rescored if r.changed]
    for r in changed:
        if args.json:
            print(
                json.dumps(
                    {
                        "sitting": r.sitting_id,
                        "before": r.before.to_json() if r.before else None,
                        "after": r.after.to_json(),
                        "held_by": r.held_by or None,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        before = (
            f"{r.before.score:g}/{r.before.max_score:g} {r.before.outcome.value}"
            if r.before
            else "no result"
        )
        after = f"{r.after.score:g}/{r.after.max_score:g} {r.after.outcome.value}"
        held = f"  (held: {r.held_by} decided this score)" if r.held_by else ""
        print(f"{r.sitting_id}: {before} → {after}{held}")
    writable = [r for r in changed if not r.held_by]
    summary = (
        f"{len(rescored)} sitting(s) re-scored, {len(changed)} changed, "
        f"{len(changed) - len(writable)} held by appeals"
    )
    if not args.confirm:
        print(f"{summary}; nothing written (add --confirm --reason TEXT)", file=sys.stderr)
        return 0
    if not writable:
        print(f"{summary}; nothing to write", file=sys.stderr)
        return 0
    from engine.offline import offline_store
    from engine.rescoring import apply

    async def write() -> int:
        async with offline_store(args.data) as store:
            written = await apply(store, schemes, exam, writable, args.reason, time.time())
            return len(written)

    print(f"{summary}; {asyncio.run(write())} result(s) written", file=sys.stderr)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from engine.analysis import analyze, report_text
    from engine.cli_results import load_exam
    from engine.rescoring import (
        SCORED_STATES,
        matrix_of,
        read_responses,
        stored_responses,
    )

    exam, banks = load_exam(args)
    try:
        part = exam.part(args.part)
    except KeyError:
        raise ConfigError(f"exam {exam.id!r} has no part {args.part!r}") from None
    if args.responses is not None:
        responses = [r for r in read_responses(args.responses) if r.part_id == part.id]
    else:
        responses = stored_responses(args.data, exam, banks, [part.id])
    scored = [r for r in responses if r.state in SCORED_STATES]
    if not scored:
        raise ConfigError(f"no scored responses of part {part.id!r} to analyse")
    bank = banks[part.bank_id]
    result = analyze(matrix_of(bank, scored), bank, part.blueprint.dimension, part.blueprint.total)
    if args.format == "json":
        text = json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "csv":
        text = _csv(result)
    else:
        text = report_text(result, f"{exam.id} / {part.id} ({bank.id} {bank.version})")
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _csv(result: Analysis) -> str:
    from engine.analysis import LETTERS

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    width = max((len(item.option_counts) for item in result.items), default=0)
    writer.writerow(
        ["item", "tag", "key", "takers", "p_value", "discrimination", "unanswered"]
        + [f"chose_{LETTERS[k]}" for k in range(width)]
        + ["flags"]
    )
    for item in result.items:
        counts = list(item.option_counts) + [""] * (width - len(item.option_counts))
        writer.writerow(
            [
                item.item_id,
                item.tag,
                LETTERS[item.key],
                item.takers,
                _cell(item.p_value),
                _cell(item.discrimination),
                item.unanswered,
                *counts,
                " | ".join(item.flags),
            ]
        )
    return buffer.getvalue()


def _cell(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"
