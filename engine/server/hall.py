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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from engine import wire
from engine.admission import check_admission
from engine.detection import DetectorRegistry, Finding
from engine.exceptions import (
    AdmissionRefused,
    AuthError,
    CandidateError,
    ExamhallError,
    ForbiddenError,
    StoreError,
    TooLate,
)
from engine.fixation import MediaRecord
from engine.forms import assemble_form, assemble_forms
from engine.issuing import issue_on_close
from engine.model import Admission, Bank, Candidate, Exam, Form, Part, Staff
from engine.plugins import SchemeRegistry
from engine.records import RecordStore
from engine.results import result_record
from engine.scoring import build_matrix
from engine.server.auth import Claims, TokenIssuer, hash_code
from engine.server.board import Board, TileState
from engine.server.form_frames import FormFrames
from engine.server.scheduler import DeadlineScheduler
from engine.sitting import Sitting, SittingEvent, Snapshot, State, sitting_id_for
from engine.store.base import Store
from engine.store.proctoring import ProctoringRecords

log = logging.getLogger("examhall.hall")

SILENCE_S = 30.0
"""No frame for this long from a connected, running candidate is a heartbeat gap."""
MEDIA_STALL_S = 30.0
"""No recording for this long, once recording began, is a media gap."""

FORM_BATCH = 256
"""Forms assembled together when a sitting of the batch is first taken up."""

TICK_SLICE = 250
"""Clocks sent between two yields to the loop during a tick (about 5 ms of sends)."""
HEALTH_WATCH_S = 1.0
"""How often `tick` looks over every connected sitting for heartbeat and media gaps."""
WATCH_SLICE = 1000
"""Sittings the health watch looks over between two yields to the loop (a fraction of a ms)."""
QUIET_AFTER_SIGN_IN_S = 30.0
"""A sign-in this recent means its candidate is about to connect and start: not quiet yet."""


def check_levels(msg: wire.Levels) -> None:
    """Refuse a levels frame the detectors cannot read (`CandidateError`, the socket goes on)."""
    if not msg.values or len(msg.values) > wire.MAX_LEVELS_PER_FRAME or msg.interval_ms < 10:
        raise CandidateError(
            f"levels takes 1..{wire.MAX_LEVELS_PER_FRAME} values at 10 ms or more apart",
            code="bad_levels",
        )


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
    staff: Mapping[str, Staff] = field(default_factory=dict)
    _batches_made: set[tuple[str, int]] = field(default_factory=set, repr=False)
    _waiting_forms: dict[tuple[str, str], Form] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._roster = list(self.candidates)
        self._roster_index = {candidate: i for i, candidate in enumerate(self._roster)}

    def form(self, candidate_id: str, part: Part) -> Form:
        """The candidate's form, made together with those of the next candidates on the roster.

        One form alone costs about 300 µs; a batch of 256 about 80 µs each. A room starting at
        once asks for forms in roster order, so the batch's other forms are soon taken.
        """
        form = self._waiting_forms.pop((part.id, candidate_id), None)
        if form is not None:
            return form
        bank = self.banks[part.id]
        index = self._roster_index.get(candidate_id)
        batch = None if index is None else (part.id, index // FORM_BATCH)
        if batch is None or batch in self._batches_made:
            return assemble_form(self.secret, self.exam, part, bank, candidate_id)
        self._batches_made.add(batch)
        start = batch[1] * FORM_BATCH
        ids = self._roster[start : start + FORM_BATCH]
        forms = assemble_forms(self.secret, self.exam, part, bank, ids)
        made = zip(ids, forms, strict=True)
        self._waiting_forms.update(((part.id, other), form) for other, form in made)
        return self._waiting_forms.pop((part.id, candidate_id))


@dataclass(eq=False)
class LiveSitting:
    sitting: Sitting
    runtime: ExamRuntime
    part: Part
    link: Link | None = None
    last_commit: asyncio.Future[int] | None = None
    warned: set[int] = field(default_factory=set)
    last_seen: float | None = None
    media_last_at: float | None = None
    silent_noted: bool = False
    media_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stall_noted: bool = False
    detector_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock_sent_at: float = float("-inf")
    """When this sitting's last clock was built (server time): the tick sends the next one a
    clock interval later, so each sitting keeps its own phase."""

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
        detectors: DetectorRegistry | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.exams = dict(exams)
        self.schemes = schemes
        self.tokens = tokens
        self.detectors = detectors
        self.now = now
        self.board = Board(now=lambda: self.now())
        self._stale_tiles: dict[str, LiveSitting] = {}
        self.form_frames = FormFrames()
        self.board.refresh = self._refresh_tiles
        self.records: ProctoringRecords | None = None
        self.live: dict[str, LiveSitting] = {}
        self.scheduler = DeadlineScheduler(self._on_timer, now=now)
        self._loading: dict[str, asyncio.Future[LiveSitting]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._clocks_sent: deque[tuple[float, LiveSitting]] = deque()
        """(when, sitting) of every clock built, oldest first: whose next clock is due."""
        self._health_watched_at = float("-inf")
        self._signed_in_at = float("-inf")
        self.quiet_after_sign_in_s = QUIET_AFTER_SIGN_IN_S

    # -- start and stop ----------------------------------------------------------------------

    async def restore(self) -> int:
        """Take up every open sitting from the store; close those whose deadline passed."""
        await self._set_board()
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

    async def _set_board(self) -> None:
        """A tile for every candidate and part, in the state the store knows."""
        stored_sittings = await self.store.sittings_of(list(self.exams))
        known = {stored.snapshot.sitting_id: stored for stored in stored_sittings}
        for runtime in self.exams.values():
            for candidate in runtime.candidates.values():
                for part in runtime.exam.parts:
                    sitting_id = sitting_id_for(runtime.exam.id, candidate.id, part.id)
                    tile = TileState(
                        sitting_id,
                        runtime.exam.id,
                        candidate,
                        part.id,
                        part.blueprint.total,
                        float(part.time_limit_s),
                        remaining_s=float(part.time_limit_s),
                    )
                    stored = known.get(sitting_id)
                    if stored is not None:
                        snap = stored.snapshot
                        sitting = Sitting(
                            snap, Form(runtime.exam.id, candidate.id, part.id, ()), ()
                        )
                        tile.apply_snapshot(snap, sitting.remaining(self.now()), sitting.deadline())
                        answered = {a.item_id: a.choice for a in stored.answers}
                        tile.answered = sum(1 for c in answered.values() if c is not None)
                    self.board.add(tile)

    def _tile(self, live: LiveSitting) -> None:
        """Note that the sitting's tile is stale; it is rebuilt once, when a feed is built.

        An answer only costs this dict entry: at 10,000 sittings answering every few seconds,
        rebuilding the tile per answer cost more than the feed that reads it twice a second.
        """
        self._stale_tiles[live.sitting.id] = live

    def _refresh_tiles(self) -> None:
        """Bring every stale tile up to date and mark it for the next feed."""
        stale, self._stale_tiles = self._stale_tiles, {}
        now = self.now()
        for sitting_id, live in stale.items():
            tile = self.board.tiles.get(sitting_id)
            if tile is None:
                continue
            sitting = live.sitting
            tile.apply_snapshot(sitting.snapshot, sitting.remaining(now), sitting.deadline())
            tile.answered = sitting.answered_count
            tile.connected = live.link is not None
            tile.last_seen = live.last_seen
            self.board.mark(tile)

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
        self._signed_in_at = time.monotonic()
        code_hash = hash_code(access_code)
        redemption = await self.store.redeem_code(code_hash, self.now())
        runtime = self.exams.get(redemption.exam_id)
        if runtime is None:
            raise AuthError(
                "this access code belongs to an exam that is not running", code="bad_code"
            )
        candidate = runtime.candidates[redemption.candidate_id]
        try:
            await self._check_admission(runtime, candidate, None)
        except AdmissionRefused:
            # Refused for now (a retake wait): the code must still work once the wait is over.
            await self.store.release_code(code_hash)
            raise
        token, expires_at = self.tokens.issue(
            subject=candidate.id, exam_id=runtime.exam.id, role="candidate", now=self.now()
        )
        return SignIn(token, expires_at, candidate, runtime.exam)

    async def _check_admission(
        self, runtime: ExamRuntime, candidate: Candidate, part_id: str | None
    ) -> None:
        """The scheme's admission rules (KZ-9 retake wait, UA-7 no retake); raises if refused."""
        same_scheme = [
            exam_id
            for exam_id, other in self.exams.items()
            if other.exam.scheme == runtime.exam.scheme
        ]
        await check_admission(
            self._records_store(),
            self.schemes,
            runtime.exam,
            candidate,
            self.now(),
            part_id=part_id,
            same_scheme_exams=same_scheme,
        )

    def has_running_sittings(self) -> bool:
        """Whether a candidate is answering now (paused and checked-in ones are not)."""
        return any(live.sitting.state is State.RUNNING for live in self.live.values())

    def is_quiet(self) -> bool:
        """Whether no candidate would wait on a pause of the loop: nobody signed in lately,
        nobody connected, no sitting running (a resume may come any moment).

        A start storm begins with thousands of sign-ins and connections before anyone runs:
        collections walking the heap then (about 0.2 s each, one to three a storm) held them
        all up.
        """
        if time.monotonic() - self._signed_in_at < self.quiet_after_sign_in_s:
            return False
        return not any(
            live.link is not None or live.sitting.state is State.RUNNING
            for live in self.live.values()
        )

    async def sitting_for(self, claims: Claims, part_id: str) -> LiveSitting:
        """The token's candidate's sitting of this part (loaded, or made if new)."""
        runtime = self.exams.get(claims.exam_id)
        if runtime is None or claims.subject not in runtime.candidates:
            raise AuthError("the token names no candidate of a running exam", code="bad_token")
        try:
            part = runtime.exam.part(part_id)
        except KeyError:
            raise ForbiddenError(
                f"exam {runtime.exam.id!r} has no part {part_id!r}", code="unknown_part"
            ) from None
        return await self._live_sitting(runtime, runtime.candidates[claims.subject], part)

    async def enter(self, claims: Claims, part_id: str, link: Link) -> LiveSitting:
        """Attach a connection to the candidate's sitting for this part, superseding any other."""
        live = await self.sitting_for(claims, part_id)
        runtime = live.runtime
        if live.sitting.state.is_final:
            raise SittingClosed(await self._closed_message(live))
        if live.sitting.state is State.SCHEDULED:
            candidate = runtime.candidates[live.sitting.snapshot.candidate_id]
            await self._check_admission(runtime, candidate, live.part.id)
        if live.sitting.state is State.SCHEDULED and runtime.exam.admission is Admission.SELF:
            await self.persist(live, live.sitting.check_in(self.now(), by="self"))
        # The new link is attached only after these awaits, so nothing (a clock tick) can reach
        # the client before its welcome.
        previous, live.link = live.link, None
        live.last_seen = self.now()
        live.silent_noted = False
        if previous is not None:
            self._spawn(self._supersede(previous))
            await self.note(
                live, Finding("second-connection", "a new connection took over", 2), "server"
            )
        elif live.sitting.snapshot.disconnected_at is not None:
            await self.persist(live, live.sitting.reconnected(self.now()))
            await self._apply_lost_time_policy(live)
        live.link = link
        self._tile(live)
        return live

    async def _apply_lost_time_policy(self, live: LiveSitting) -> None:
        """Give lost time back at once where the scheme says so; else a proctor decides."""
        policy = getattr(self.schemes.get(live.runtime.exam.scheme), "lost_time_policy", "proctor")
        if policy == "automatic" and live.sitting.snapshot.lost_s > 0:
            await self.persist(live, live.sitting.return_lost_time(self.now(), by="policy"))
            self.schedule(live)

    def leave(self, live: LiveSitting, link: Link) -> None:
        """The connection ended; a running sitting starts counting lost time.

        Not a coroutine: the socket's handler may be cancelled as the peer goes away, and the
        record of the disconnect must not go with it.
        """
        if live.link is not link:
            return
        live.link = None
        self._tile(live)
        if live.sitting.state is State.RUNNING and live.sitting.id in self.live:
            self._spawn(self._record_disconnect(live))

    async def _record_disconnect(self, live: LiveSitting) -> None:
        with contextlib.suppress(StoreError):
            await self.persist(live, live.sitting.disconnected(self.now()))
            await self.note(live, Finding("disconnected", "the connection dropped", 3), "server")

    def seen(self, live: LiveSitting) -> None:
        """A frame arrived from the candidate."""
        live.last_seen = self.now()

    async def let_go(self, live: LiveSitting, error: wire.Error) -> None:
        """Tell the sitting's connection, if any, why it ends (`error`), and close it."""
        link = live.link
        if link is None:
            return
        await _quietly(link.send(wire.serialize(error)))
        await _quietly(link.close(error.close_code or wire.CloseCode.UNAUTHORIZED, error.code))

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
        sitting = Sitting(
            snapshot,
            form,
            runtime.exam.languages,
            answers,
            requires_identity=runtime.exam.admission is Admission.PROCTOR,
        )
        return LiveSitting(sitting, runtime, part)

    async def _take_up(self, live: LiveSitting) -> None:
        """Keep an open sitting in memory with its timers; expire it at once if overdue."""
        self.live[live.sitting.id] = live
        if live.sitting.is_overdue(self.now()):
            await self.expire(live)
        else:
            self.schedule(live)

    # -- the candidate's moves ---------------------------------------------------------------

    async def start(self, live: LiveSitting, language: str) -> None:
        event = live.sitting.start(self.now(), language=language)
        await self.persist(live, event)
        self.schedule(live)
        await self.send_frame(live, self.form_frame(live))
        await self.send(live, self.clock_message(live))

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
            commit = live.last_commit
            if commit is not None and commit.cancelled():
                raise StoreError("the answer's commit was abandoned; resume to see what is stored")
            if commit is not None:
                await asyncio.shield(commit)
        else:
            await self.persist(live, event)
        return wire.Ack(msg.seq, msg.item)

    async def submit(self, live: LiveSitting) -> None:
        try:
            event = live.sitting.submit(self.now())
        except TooLate as refusal:
            await self._refuse_late(live, refusal, {"submit": True}, None)
            return
        await self.close(live, event)

    async def _refuse_late(
        self, live: LiveSitting, refusal: TooLate, what: dict[str, Any], seq: int | None
    ) -> None:
        """Log the refused frame, tell the candidate, then close at the deadline (KZ-6)."""
        at = self.now()
        refused = SittingEvent(live.sitting.id, "refused", at, {**what, "reason": refusal.message})
        await self.persist(live, refused)
        await self.send(live, wire.Error(refusal.code, refusal.message, seq))
        if live.sitting.state is State.RUNNING:
            await self.expire(live)

    # -- timers ------------------------------------------------------------------------------

    def schedule(self, live: LiveSitting) -> None:
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
            self._spawn(self.send(live, wire.TimeWarning(remaining_ms, threshold)))

    async def expire(self, live: LiveSitting) -> None:
        if live.sitting.state is not State.RUNNING:
            return
        if not live.sitting.is_overdue(self.now()):
            self.schedule(live)  # woke early (clock step): wait again
            return
        await self.close(live, live.sitting.expire(self.now()))

    async def tick(self, clock_interval_s: float) -> int:
        """Send a clock to every connected, running sitting whose last is `clock_interval_s` old.

        Called several times a second: each sitting gets its clock on its own phase (set when
        it started or reconnected). Clocks go out in the order they were last sent, so the due
        ones are found at the front of `_clocks_sent` without walking every sitting, and each
        call sends only the few due since the last: at 10,000 sittings a check once a second
        sent up to 1,100 at once, a 30–50 ms stall for every answer in flight then (the ack
        p99 at exam day). Health (a walk over every sitting) is still watched once a second.
        """
        now = self.now()
        if now - self._health_watched_at >= HEALTH_WATCH_S:
            self._health_watched_at = now
            await self.watch_health()
        due_before = now - clock_interval_s
        queue = self._clocks_sent
        sent = 0
        while queue and queue[0][0] <= due_before:
            sent_at, live = queue.popleft()
            if (
                live.clock_sent_at != sent_at  # a later clock went out; its entry is further on
                or live.link is None  # it gets a clock again when it reconnects
                or live.sitting.state not in (State.RUNNING, State.PAUSED)
                or self.live.get(live.sitting.id) is not live
            ):
                continue
            await self.send(live, self.clock_message(live))
            sent += 1
            if sent % TICK_SLICE == 0:
                await asyncio.sleep(0)
        return sent

    # -- closing -----------------------------------------------------------------------------

    async def close(self, live: LiveSitting, event: SittingEvent) -> None:
        await self.persist(live, event)
        self.scheduler.clear(live.sitting.id)
        self.live.pop(live.sitting.id, None)
        result = await self._score(live)
        await self._issue_documents(live)
        closed = self._closed_from(live, result)
        link, live.link = live.link, None
        self._tile(live)
        if link is not None:
            await _quietly(link.send(wire.serialize(closed)))
            await _quietly(link.close(wire.CloseCode.NORMAL, live.sitting.state.value))

    async def _score(self, live: LiveSitting) -> dict[str, Any] | None:
        """Score the closed sitting through its scheme and store the result."""
        exam, part, sitting = live.runtime.exam, live.part, live.sitting
        candidate_id, reason = sitting.snapshot.candidate_id, sitting.snapshot.close_reason
        try:
            if sitting.state is State.TERMINATED:
                outcome = self.schemes.scheme(exam.scheme).annulled(
                    exam, part, candidate_id, reason
                )
            elif sitting.state is State.NO_SHOW:
                outcome = self.schemes.scheme(exam.scheme).absent(exam, part, candidate_id, reason)
            else:
                answers = {a.item_id: a.choice for a in sitting.answers.values()}
                matrix = build_matrix(live.bank, [(sitting.form, answers)])
                (outcome,) = self.schemes.score_part(exam, part, matrix)
            result = result_record(self.schemes, exam, outcome, sitting.snapshot.closed_at)
        except ExamhallError as error:
            log.error("scoring %s failed: %s", sitting.id, error)
            result = {"error": str(error)}
        await self.store.save_result(sitting.id, result, self.now())
        return result

    async def _issue_documents(self, live: LiveSitting) -> None:
        """What the scheme issues on closing (KZ certificate, UA removal act), signed and logged."""
        snap = live.sitting.snapshot
        try:
            await issue_on_close(
                self._records_store(),
                self.schemes,
                live.runtime.exam,
                snap.candidate_id,
                live.part.id,
                snap.state.value,
                self.now(),
                banks={bank.id: bank for bank in live.runtime.banks.values()},
            )
        except ExamhallError as error:
            log.error("documents for %s failed: %s", live.sitting.id, error)

    def _records_store(self) -> RecordStore:
        return cast(RecordStore, self.store)

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
            live.sitting.answered_count,
            result if scheme_shows else None,
        )

    # -- persistence and sending -------------------------------------------------------------

    async def persist(self, live: LiveSitting, event: SittingEvent) -> int:
        commit = self.store.record_soon(event, live.sitting.snapshot)
        live.last_commit = commit
        try:
            # Not shielded (a shield is a second future and a second hop per answer): a
            # cancelled wait cancels the commit's future, though the writer still writes it.
            seq = await commit
        except StoreError:
            log.exception("store failed for %s; dropping it from memory", live.sitting.id)
            self._forget(live)
            if live.link is not None:
                self._spawn(_quietly(live.link.close(wire.CloseCode.SERVER_ERROR, "store failed")))
            raise
        except asyncio.CancelledError:
            # Nobody can learn this record's outcome any more (a retry waits on `last_commit`):
            # forget the sitting as on a failure. The cancelled task is the socket's handler
            # (its link closes as it ends) or one the hall cancels when it stops.
            self._forget(live)
            raise
        self._tile(live)
        return seq

    def _forget(self, live: LiveSitting) -> None:
        """Memory may have run ahead of the disk: drop it, so the client resumes from the store."""
        if self.live.get(live.sitting.id) is live:
            del self.live[live.sitting.id]
        self.scheduler.clear(live.sitting.id)

    async def send(self, live: LiveSitting, msg: wire.Message) -> None:
        await self.send_frame(live, wire.serialize(msg))

    async def send_frame(self, live: LiveSitting, frame: bytes) -> None:
        if live.link is not None:
            await _quietly(live.link.send(frame))

    # -- irregularities ----------------------------------------------------------------------

    async def note(self, live: LiveSitting, finding: Finding, source: str) -> None:
        """Record an irregularity in the journal and put it in front of the site's proctors."""
        at = self.now()
        event = SittingEvent(
            live.sitting.id,
            "irregularity",
            at,
            {
                "kind": finding.kind,
                "detail": finding.detail,
                "severity": finding.severity,
                "source": source,
            },
        )
        await self.persist(live, event)
        tile = self.board.tiles.get(live.sitting.id)
        if tile is not None:
            tile.irregularities += 1
            tile.last_irregularity = {
                "kind": finding.kind,
                "at": at,
                "detail": finding.detail,
                "source": source,
            }
            tile.last_by_severity[finding.severity] = at
            self.board.mark(tile)
            key = (tile.exam, tile.candidate.site_id)
            pushed = wire.Irregularity(live.sitting.id, finding.kind, at, finding.detail, source)
            self.board.broadcast(key, wire.serialize(pushed))

    async def signal(self, live: LiveSitting, msg: wire.Signal) -> None:
        if msg.kind not in wire.SIGNAL_KINDS:
            raise CandidateError(
                f"signal kind {msg.kind!r} is not one of {', '.join(sorted(wire.SIGNAL_KINDS))}",
                code="bad_signal",
            )
        await self.persist(
            live,
            SittingEvent(
                live.sitting.id,
                "signal",
                self.now(),
                {"kind": msg.kind, "detail": msg.detail[:200], "client_time": msg.at},
            ),
        )
        if self.detectors is not None:
            for source, finding in self.detectors.signal(
                live.detector_states, msg.kind, msg.detail[:200]
            ):
                await self.note(live, finding, source)

    async def levels(self, live: LiveSitting, msg: wire.Levels) -> None:
        check_levels(msg)
        if self.detectors is not None:
            found = self.detectors.levels(
                live.detector_states, msg.start, msg.interval_ms / 1000, msg.values
            )
            for source, finding in found:
                await self.note(live, finding, source)

    def media_heard(self, live: LiveSitting) -> None:
        """An upload from the sitting's page reached the server: its recording is not stalled,
        even while the node holds the upload for want of room (engine/server/upload_gate.py)."""
        live.media_last_at = self.now()
        live.stall_noted = False

    async def media_arrived(self, live: LiveSitting, *, snapshot: bool) -> None:
        self.media_heard(live)
        tile = self.board.tiles.get(live.sitting.id)
        if tile is not None and snapshot:
            tile.snapshot_at = live.media_last_at
            self.board.mark(tile)

    async def watch_health(self) -> None:
        """Heartbeat and media gaps of connected, running sittings become irregularities.

        In slices, with the loop free between them: one walk over 10,000 sittings at once
        stopped every answer in flight once a second.
        """
        now = self.now()
        for looked, live in enumerate(list(self.live.values()), 1):
            if looked % WATCH_SLICE == 0:
                await asyncio.sleep(0)
            if live.link is None or live.sitting.state is not State.RUNNING:
                continue
            if (
                live.last_seen is not None
                and now - live.last_seen > SILENCE_S
                and not live.silent_noted
            ):
                live.silent_noted = True
                await self.note(
                    live,
                    Finding(
                        "heartbeat-gap",
                        f"nothing heard from the candidate for {now - live.last_seen:.0f} s",
                        2,
                    ),
                    "server",
                )
            if (
                live.media_last_at is not None
                and now - live.media_last_at > MEDIA_STALL_S
                and not live.stall_noted
            ):
                live.stall_noted = True
                await self.note(
                    live,
                    Finding(
                        "media-stalled",
                        f"no recording received for {now - live.media_last_at:.0f} s",
                        3,
                    ),
                    "server",
                )

    async def media_records(self, sitting_id: str) -> list[MediaRecord]:
        return [] if self.records is None else await self.records.media_of(sitting_id)

    async def open_by_id(self, sitting_id: str) -> LiveSitting:
        """The live sitting behind an id from the board (loaded if nobody is connected)."""
        tile = self.board.tiles.get(sitting_id)
        if tile is None:
            raise CandidateError(f"no sitting {sitting_id!r}", code="unknown_sitting")
        runtime = self.exams[tile.exam]
        return await self._live_sitting(runtime, tile.candidate, runtime.exam.part(tile.part))

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

    def form_frame(self, live: LiveSitting) -> bytes:
        """The encoded `form` message (built from cached items, see engine/server/form_frames)."""
        language = live.sitting.snapshot.language
        assert language is not None
        return self.form_frames.frame(live.bank, language, live.sitting.form)

    def clock_message(self, live: LiveSitting) -> wire.Clock:
        """The sitting's clock now; building it counts as sending it (see `tick`)."""
        now = self.now()
        live.clock_sent_at = now
        self._clocks_sent.append((now, live))
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
