"""One exception tree for the whole engine.

The split that matters is whose mistake it is: a `CandidateError` (or any `RequestError`) is the
client's and goes back to it as an error message with a code; an `EngineError` that is not a
`RequestError` is ours, is logged, and the client only hears that something failed on our side.

    ExamhallError
    ├── ConfigError                  a bank, exam or configuration file is wrong
    │   └── BankError                carries every problem found, with file and item id
    ├── PluginError                  a plugin raised, returned nonsense or clashed by name
    ├── StoreError                   the store failed (disk full, corrupt file)
    ├── JournalError                 the tamper-evident log does not verify
    ├── SignatureError               a sealed file or statement does not verify
    └── RequestError                 the client's mistake; has a wire `code`
        ├── ProtocolError            malformed frame, unknown type, bad field   (close 4400)
        ├── AuthError                bad, expired or foreign token / code       (close 4401)
        ├── ForbiddenError           not yours to see or do                     (close 4403)
        │   └── AdmissionRefused     a rule refuses this person a sitting now (KZ-9, UA-7)
        ├── AppealRefused            an appeal the rules do not accept (late, not personal)
        └── CandidateError           a legal frame that the sitting refuses (stays open)
            ├── IllegalTransition    the sitting's state does not allow it
            ├── SequenceError        replayed with other content, or a gap in answer numbers
            ├── TooLate              arrived after the deadline
            └── UnknownItem          the item is not in this candidate's form
"""

from __future__ import annotations

from dataclasses import dataclass


class ExamhallError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(ExamhallError):
    """A bank, exam or configuration file cannot be used."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file, precise enough to fix without guessing."""

    file: str
    item_id: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: item {self.item_id}" if self.item_id else self.file
        return f"{where}: {self.reason}"


class BankError(ConfigError):
    """A bank or exam file failed validation; nothing of it was loaded."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s):\n{listing}")


class PluginError(ExamhallError):
    """A plugin misbehaved; the message names the plugin."""

    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"plugin {plugin!r}: {reason}")


class StoreError(ExamhallError):
    """The store could not do what was asked."""


class JournalError(ExamhallError):
    """The event log does not verify; `seq` is the first bad event where one can be named."""

    def __init__(self, reason: str, seq: int | None = None) -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(reason if seq is None else f"event {seq}: {reason}")


class SignatureError(ExamhallError):
    """A seal is missing, malformed, made by another key, or does not match the bytes."""


class RequestError(ExamhallError):
    """The client's mistake. `code` is the wire error code, `close_code` set when fatal."""

    code = "bad_request"
    close_code: int | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProtocolError(RequestError):
    code = "protocol"
    close_code = 4400


class AuthError(RequestError):
    code = "unauthorized"
    close_code = 4401


class ForbiddenError(RequestError):
    code = "forbidden"
    close_code = 4403


class CandidateError(RequestError):
    """Refused by the sitting; the connection stays open."""

    code = "refused"


class IllegalTransition(CandidateError):
    code = "illegal_state"


class SequenceError(CandidateError):
    code = "bad_sequence"


class TooLate(CandidateError):
    code = "too_late"


class UnknownItem(CandidateError):
    code = "unknown_item"


class AdmissionRefused(ForbiddenError):
    """A scheme's rule refuses a sitting; `allowed_from` is the first day allowed, if any."""

    code = "not_admitted"

    def __init__(self, message: str, *, rule: str, allowed_from: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.allowed_from = allowed_from


class AppealRefused(RequestError):
    """An appeal that is not accepted for consideration; the message cites the rule."""

    code = "appeal_refused"

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule
