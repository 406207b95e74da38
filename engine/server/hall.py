"""The running exam hall: live sittings, their connections, timers and the store between them.

The hall is the I/O shell around `engine.sitting`: it reads the clock, calls the state machine,
waits for the store to make each event durable and only then tells the candidate. Sockets are
reached through the small `Link` interface, so the hall does not know about aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine import wire
from engine.exceptions import (
    AuthError,
    ExamhallError,
    ForbiddenError,
    StoreError,
    TooLate,
)
from engine.forms import assemble_form
from engine.model import Bank, Candidate, Exam, Form, Part
from engine.plugins import SchemeRegistry
from engine.scoring import build_matrix
from engine.server.auth import Claims, TokenIssuer, hash_code
from engine.server.scheduler import DeadlineScheduler
from engine.sitting import Sitting, SittingEvent, Snapshot, State, sitting_id_for
from engine.store.base import Store

log = logging.getLogger("examhall.hall")


class Link(Protocol):
    """A candidate's connection as the hall sees it."""

    async def send(self, frame: bytes) -> None: ...

    async def close(self, code: int, message: str) -> None: ...


@dataclass
class ExamRuntime:
    """A loaded exam: its definition, the bank of each part, its candidates and form secret."""

    exam: Exam
    banks: Mapping[str, Bank]
    candidates: Mapping[str, Candidate]
    secret: bytes

    def form(self, candidate_id: str, part: Part) -> Form:
        return assemble_form(self.secret, self.exam, part, self.banks[part.id], candidate_id)


@dataclass(eq=False)
class LiveSitting:
    sitting: Sitting
    runtime: ExamRuntime
    part: Part
    link: Link | None = None
    last_commit: asyncio.Future[int] | None = None
    warned: set[int] = field(default_factory=set)

    @property
    def bank(self) -> Bank:
        return self.runtime.banks[self.part.id]


@dataclass(frozen=True, slots=True)
class SignIn:
    token: str
    expires_at: float
    candidate: Candidate
    exam: Exam


class SittingClosed(ExamhallError):
    """Hello for a sitting that is already over; the client gets its `Closed` and 4410."""

    def __init__(self, closed: wire.Closed) -> None:
        super().__init__(closed.reason)
        self.closed = closed


class Hall:
    def __init__(
        self,
        store: Store,
        exams: Mapping[str, ExamRuntime],
        schemes: SchemeRegistry,
        tokens: TokenIssuer,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.exams = dict(exams)
        self.schemes = schemes
        self.tokens = tokens
        self.now = now
        self.live: dict[str, LiveSitting] = {}
        self.scheduler = DeadlineScheduler(self._on_timer, now=now)
        self._loading: dict[str, asyncio.Future[LiveSitting]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- start and stop ----------------------------------------------------------------------

    async def restore(self) -> int:
        """Take up every open sitting from the store; close those whose deadline passed."""
        restored = 0
        for stored in await self.store.open_sittings():
            runtime = self.exams.get(stored.snapshot.exam_id)
            if runtime is None:
                log.warning("open sitting %s of an exam not loaded", stored.snapshot.sitting_id)
                continue
            part = runtime.exam.part(stored.snapshot.part_id)
            live = self._make_live(runtime, part, stored.snapshot, stored.answers)
            await self._take_up(live)
            restored += 1
        return restored

    async def shutdown(self) -> None:
        self.scheduler.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- signing in and entering a sitting ---------------------------------------------------

    async def sign_in(self, access_code: str) -> SignIn:
        redemption = await self.store.redeem_code(hash_code(access_code), self.now())
        runtime = self.exams.get(redemption.exam_id)
        if runtime is None:
            raise AuthError(
                "this access code belongs to an exam that is not running", code="bad_code"
            )
        candidate = runtime.candidates[redemption.candidate_id]
        token, expires_at = self.tokens.issue(
            subject=candidate.id, exam_id=runtime.exam.id, role="candidate", now=self.now()
        )
        return SignIn(token, expires_at, candidate, runtime.exam)

    async def enter(self, claims: Claims, part_id: str, link: Link) -> LiveSitting:
        """Attach a connection to the candidate's sitting for this part, superseding any other."""
        runtime = self.exams.get(claims.exam_id)
        if runtime is None or claims.subject not in runtime.candidates:
            raise AuthError("the token names no candidate of a running exam", code="bad_token")
        try:
            part = runtime.exam.part(part_id)
        except KeyError:
            raise ForbiddenError(
                f"exam {runtime.exam.id!r} has no part {part_id!r}", code="unknown_part"
            ) from None
        live = await self._live_sitting(runtime, runtime.candidates[claims.subject], part)
        if live.sitting.state.is_final:
            raise SittingClosed(await self._closed_message(live))
        if live.sitting.state is State.SCHEDULED and runtime.exam.admission == "self":
            await self._persist(live, live.sitting.check_in(self.now(), by="self"))
        previous, live.link = live.link, link
        if previous is not None:
            self._spawn(self._supersede(previous))
        return live

    async def leave(self, live: LiveSitting, link: Link) -> None:
        if live.link is link:
            live.link = None

    async def _supersede(self, link: Link) -> None:
        error = wire.Error(
            "superseded",
            "another connection took over this sitting",
            fatal=True,
            close_code=wire.CloseCode.SUPERSEDED,
        )
        await _quietly(link.send(wire.serialize(error)))
        await _quietly(link.close(wire.CloseCode.SUPERSEDED, "superseded"))

    async def _live_sitting(
        self, runtime: ExamRuntime, candidate: Candidate, part: Part
    ) -> LiveSitting:
        sitting_id = sitting_id_for(runtime.exam.id, candidate.id, part.id)
        live = self.live.get(sitting_id)
        if live is not None:
            return live
        loading = self._loading.get(sitting_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[LiveSitting] = asyncio.get_running_loop().create_future()
        self._loading[sitting_id] = future
        try:
            stored = await self.store.load_sitting(sitting_id)
            if stored is None:
                snapshot = Snapshot(
                    sitting_id, runtime.exam.id, candidate.id, part.id, float(part.time_limit_s)
                )
                live = self._make_live(runtime, part, snapshot, ())
            else:
                live = self._make_live(runtime, part, stored.snapshot, stored.answers)
            if not live.sitting.state.is_final:
                await self._take_up(live)
            future.set_result(live)
            return live
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._loading[sitting_id]

    def _make_live(
        self, runtime: ExamRuntime, part: Part, snapshot: Snapshot, answers: Any
    ) -> LiveSitting:
        form = runtime.form(snapshot.candidate_id, part)
        sitting = Sitting(snapshot, form, runtime.exam.languages, answers)
        return LiveSitting(sitting, runtime, part)

    async def _take_up(self, live: LiveSitting) -> None:
        """Keep an open sitting in memory with its timers; expire it at once if overdue."""
        self.live[live.sitting.id] = live
        if live.sitting.is_overdue(self.now()):
            await self.expire(live)
        else:
            self._schedule(live)

    # -- the candidate's moves ---------------------------------------------------------------

    async def start(self, live: LiveSitting, language: str) -> None:
        event = live.sitting.start(self.now(), language=language)
        await self._persist(live, event)
        self._schedule(live)
        await self._send(live, self.form_message(live))
        await self._send(live, self.clock_message(live))

    async def answer(self, live: LiveSitting, msg: wire.Answer) -> wire.Ack | None:
        """Record an answer and return its acknowledgement once it is durable.

        None when it came too late: the refusal is sent and the sitting closed here.
        """
        try:
            event = live.sitting.answer(
                seq=msg.seq, item_id=msg.item, shown=msg.choice, flagged=msg.flagged, now=self.now()
            )
        except TooLate as refusal:
            await self._refuse_late(live, refusal, {"seq": msg.seq, "item": msg.item}, msg.seq)
            return None
        if event is None:
            if live.last_commit is not None:
                await asyncio.shield(live.last_commit)
        else:
            await self._persist(live, event)
        return wire.Ack(msg.seq, msg.item)

    async def submit(self, live: LiveSitting) -> None:
        try:
            event = live.sitting.submit(self.now())
        except TooLate as refusal:
            await self._refuse_late(live, refusal, {"submit": True}, None)
            return
        await self._close(live, event)

    async def _refuse_late(
        self, live: LiveSitting, refusal: TooLate, what: dict[str, Any], seq: int | None
    ) -> None:
        """Log the refused frame, tell the candidate, then close at the deadline (KZ-6)."""
        at = self.now()
        refused = SittingEvent(live.sitting.id, "refused", at, {**what, "reason": refusal.message})
        await self._persist(live, refused)
        await self._send(live, wire.Error(refusal.code, refusal.message, seq))
        if live.sitting.state is State.RUNNING:
            await self.expire(live)

    # -- timers ------------------------------------------------------------------------------

    def _schedule(self, live: LiveSitting) -> None:
        deadline = live.sitting.deadline()
        if deadline is None:
            self.scheduler.clear(live.sitting.id)
            return
        times = [(deadline, "deadline")]
        times += [
            (deadline - threshold, f"warning:{threshold}")
            for threshold in live.part.warnings_s
            if threshold not in live.warned and deadline - threshold > self.now()
        ]
        self.scheduler.set(live.sitting.id, times)

    def _on_timer(self, sitting_id: str, tag: str) -> None:
        live = self.live.get(sitting_id)
        if live is None:
            return
        if tag == "deadline":
            self._spawn(self.expire(live))
        elif tag.startswith("warning:"):
            threshold = int(tag.partition(":")[2])
            live.warned.add(threshold)
            remaining_ms = int(live.sitting.remaining(self.now()) * 1000)
            self._spawn(self._send(live, wire.TimeWarning(remaining_ms, threshold)))

    async def expire(self, live: LiveSitting) -> None:
        if live.sitting.state is not State.RUNNING:
            return
        if not live.sitting.is_overdue(self.now()):
            self._schedule(live)  # woke early (clock step): wait again
            return
        await self._close(live, live.sitting.expire(self.now()))

    async def tick(self) -> int:
        """Send every connected, running candidate the server's clock; returns how many."""
        sent = 0
        for live in list(self.live.values()):
            if live.link is not None and live.sitting.state in (State.RUNNING, State.PAUSED):
                await self._send(live, self.clock_message(live))
                sent += 1
        return sent

    # -- closing -----------------------------------------------------------------------------

    async def _close(self, live: LiveSitting, event: SittingEvent) -> None:
        await self._persist(live, event)
        self.scheduler.clear(live.sitting.id)
        self.live.pop(live.sitting.id, None)
        result = await self._score(live)
        closed = self._closed_from(live, result)
        link, live.link = live.link, None
        if link is not None:
            await _quietly(link.send(wire.serialize(closed)))
            await _quietly(link.close(wire.CloseCode.NORMAL, live.sitting.state.value))

    async def _score(self, live: LiveSitting) -> dict[str, Any] | None:
        """Score the closed sitting through its scheme and store the result."""
        exam, part, sitting = live.runtime.exam, live.part, live.sitting
        try:
            if sitting.state is State.TERMINATED:
                scheme = self.schemes.get(exam.scheme)
                outcome = scheme.annulled(
                    exam, part, sitting.snapshot.candidate_id, sitting.snapshot.close_reason
                )
            else:
                answers = {a.item_id: a.choice for a in sitting.answers.values()}
                matrix = build_matrix(live.bank, [(sitting.form, answers)])
                (outcome,) = self.schemes.score_part(exam, part, matrix)
            result = outcome.to_json()
        except ExamhallError as error:
            log.error("scoring %s failed: %s", sitting.id, error)
            result = {"error": str(error)}
        await self.store.save_result(sitting.id, result, self.now())
        return result

    async def _closed_message(self, live: LiveSitting) -> wire.Closed:
        return self._closed_from(live, await self.store.load_result(live.sitting.id))

    def _closed_from(self, live: LiveSitting, result: dict[str, Any] | None) -> wire.Closed:
        scheme_shows = True
        try:
            scheme_shows = self.schemes.get(live.runtime.exam.scheme).shows_result_to_candidate
        except ExamhallError:
            scheme_shows = False
        snapshot = live.sitting.snapshot
        return wire.Closed(
            snapshot.state.value,
            snapshot.close_reason,
            len(live.sitting.answered()),
            result if scheme_shows else None,
        )

    # -- persistence and sending -------------------------------------------------------------

    async def _persist(self, live: LiveSitting, event: SittingEvent) -> int:
        commit = asyncio.ensure_future(self.store.record(event, live.sitting.snapshot))
        live.last_commit = commit
        try:
            return await asyncio.shield(commit)
        except StoreError:
            # Memory ran ahead of the disk: forget it and let the client resume from the store.
            log.exception("store failed for %s; dropping it from memory", live.sitting.id)
            self.live.pop(live.sitting.id, None)
            self.scheduler.clear(live.sitting.id)
            if live.link is not None:
                self._spawn(_quietly(live.link.close(wire.CloseCode.SERVER_ERROR, "store failed")))
            raise

    async def _send(self, live: LiveSitting, msg: wire.Message) -> None:
        if live.link is not None:
            await _quietly(live.link.send(wire.serialize(msg)))

    # -- messages ----------------------------------------------------------------------------

    def welcome(self, live: LiveSitting) -> wire.Welcome:
        sitting, now = live.sitting, self.now()
        positions = {form_item.item_id: form_item.option_order for form_item in sitting.form.items}
        answers = [
            wire.AnswerState(
                a.item_id,
                None if a.choice is None else positions[a.item_id].index(a.choice),
                a.flagged,
                a.seq,
            )
            for a in sitting.answers.values()
        ]
        return wire.Welcome(
            v=wire.PROTOCOL_VERSION,
            sitting=sitting.id,
            exam=live.runtime.exam.id,
            part=live.part.id,
            title=dict(live.part.title),
            state=sitting.state.value,
            languages=list(sitting.languages),
            language=sitting.snapshot.language,
            item_count=len(sitting.form.items),
            time_limit_s=sitting.snapshot.time_limit_s + sitting.snapshot.extra_s,
            remaining_ms=int(sitting.remaining(now) * 1000),
            deadline=sitting.deadline(),
            server_time=now,
            next_seq=sitting.last_seq + 1,
            answers=answers,
        )

    def form_message(self, live: LiveSitting) -> wire.FormOut:
        language = live.sitting.snapshot.language
        assert language is not None
        bank = live.bank
        items = []
        for form_item in live.sitting.form.items:
            text = bank.by_id[form_item.item_id].texts[language]
            options = [text.options[original] for original in form_item.option_order]
            items.append(wire.ItemOut(form_item.item_id, text.stem, options))
        return wire.FormOut(language, items)

    def clock_message(self, live: LiveSitting) -> wire.Clock:
        now = self.now()
        return wire.Clock(
            live.sitting.state.value,
            int(live.sitting.remaining(now) * 1000),
            live.sitting.deadline(),
            now,
        )

    def pong(self, live: LiveSitting, ping: wire.Ping) -> wire.Pong:
        now = self.now()
        return wire.Pong(ping.id, ping.client_time, now, int(live.sitting.remaining(now) * 1000))


async def _quietly(awaitable: Any) -> None:
    """Send or close on a link that may already be gone; a dead peer is not our error."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await awaitable
