"""What a proctor may do to a sitting, checked against who they are and where they watch.

Each action runs the sitting's state machine through the hall (so it is journaled with who, when
and why before anyone is told), then tells the candidate: a notice, a status and a fresh clock.
"""

from __future__ import annotations

from engine import wire
from engine.exceptions import CandidateError, ForbiddenError
from engine.model import Staff
from engine.roster import iin_problem
from engine.server.auth import hash_code, new_access_code
from engine.server.hall import Hall, LiveSitting
from engine.sitting import SittingEvent, State


def normalize_document(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def identity_problem(identity_document: str, registered: str, presented: str) -> str | None:
    """Why the presented document does not identify the registered candidate, or None."""
    shown = normalize_document(presented)
    if not shown:
        return "no document number was entered"
    if identity_document == "iin":
        problem = iin_problem(shown)
        if problem is not None:
            return f"not a valid IIN: {problem}"
    if registered and shown != normalize_document(registered):
        return f"the {identity_document} number does not match the registration"
    return None


def check_site(staff: Staff, hall: Hall, sitting_id: str) -> None:
    key = hall.board.site_of(sitting_id)
    if key is None:
        raise CandidateError(f"no sitting {sitting_id!r}", code="unknown_sitting")
    exam_id, site_id = key
    if exam_id != staff.exam_id or site_id not in staff.sites:
        raise ForbiddenError(f"sitting {sitting_id!r} is not at a site you watch", code="forbidden")


async def act(hall: Hall, staff: Staff, action: wire.Action) -> str | None:
    """Carry out one proctor action; raises a `RequestError` with a code when refused.

    Returns the new access code for `new-code`, None for every other action."""
    if not staff.may_act:
        raise ForbiddenError("observers watch; they do not act", code="forbidden")
    check_site(staff, hall, action.sitting)
    live = await hall.open_by_id(action.sitting)
    sitting, now, by = live.sitting, hall.now(), staff.login
    kind = action.kind
    if kind == "confirm-identity":
        candidate = live.runtime.candidates[sitting.snapshot.candidate_id]
        problem = identity_problem(
            live.runtime.exam.identity_document, candidate.document, action.document
        )
        if problem is not None:
            raise CandidateError(problem, code="identity_mismatch")
        await hall.persist(live, sitting.confirm_identity(now, by=by, document=action.document))
    elif kind == "admit":
        await hall.persist(live, sitting.check_in(now, by=by))
        await _tell(hall, live, f"admitted by {by}")
    elif kind == "warn":
        if not action.text.strip():
            raise CandidateError("a warning needs a text", code="bad_field")
        await hall.persist(
            live, SittingEvent(sitting.id, "warned", now, {"by": by, "text": action.text})
        )
        await hall.send(live, wire.Notice(action.text, "warning"))
    elif kind == "pause":
        await hall.persist(live, sitting.pause(now, by=by, reason=_reason(action)))
        hall.schedule(live)
        await _tell(hall, live, action.reason)
    elif kind == "resume":
        await hall.persist(live, sitting.resume(now, by=by))
        hall.schedule(live)
        await _tell(hall, live, f"resumed by {by}")
    elif kind == "grant-time":
        if action.seconds is None:
            raise CandidateError("grant-time needs seconds", code="bad_field")
        event = sitting.grant_time(now, seconds=action.seconds, by=by, reason=_reason(action))
        await hall.persist(live, event)
        hall.schedule(live)
        await _tell(hall, live, f"{action.seconds:.0f} s of extra time: {action.reason}")
    elif kind == "return-lost-time":
        await hall.persist(live, sitting.return_lost_time(now, by=by))
        hall.schedule(live)
        await _tell(hall, live, "time lost to the connection was given back")
    elif kind == "terminate":
        await hall.close(live, sitting.terminate(now, by=by, reason=_reason(action)))
    elif kind == "no-show":
        await hall.close(live, sitting.mark_no_show(now, by=by))
    elif kind == "new-code":
        return await _new_code(hall, live, by, now)
    else:
        raise CandidateError(f"unknown action {kind!r}", code="bad_field")
    return None


async def _new_code(hall: Hall, live: LiveSitting, by: str, now: float) -> str:
    """A new one-time access code for a candidate who can no longer sign in (a device lost or
    changed, the code used up): the old code and the tokens it gave stop working (a device
    still connected is let go), the sitting goes on where it was, and the journal says who
    issued it (never the code itself)."""
    sitting = live.sitting
    if sitting.state.is_final:
        raise CandidateError(
            "the sitting is closed; a new code would open nothing", code="illegal_state"
        )
    code = new_access_code()
    exam_id, candidate_id = sitting.snapshot.exam_id, sitting.snapshot.candidate_id
    event = SittingEvent(sitting.id, "access-code-reissued", now, {"by": by})
    await hall.store.replace_code(exam_id, candidate_id, hash_code(code), event)
    hall.tokens.replace_before(exam_id, candidate_id, now)
    replaced = wire.Error(
        "token_replaced",
        "a new access code was issued for you: sign in with it",
        fatal=True,
        close_code=wire.CloseCode.UNAUTHORIZED,
    )
    await hall.let_go(live, replaced)
    return code


def _reason(action: wire.Action) -> str:
    if not action.reason.strip():
        raise CandidateError(f"{action.kind} needs a reason", code="bad_field")
    return action.reason


async def _tell(hall: Hall, live: LiveSitting, reason: str) -> None:
    state = live.sitting.state
    await hall.send(live, wire.Status(state.value, reason))
    if state in (State.RUNNING, State.PAUSED):
        await hall.send(live, hall.clock_message(live))
