"""Every message on the candidate socket: frozen dataclasses, msgpack on the wire.

A frame is a msgpack map with a type tag ``"t"`` and the message's fields by name. `parse` checks
the frame fully — size, msgpack, type, every field's presence and type, no unknown fields — and
raises `ProtocolError` with the reason, so a handler only ever sees a well-formed message.
`serialize` is the only encoder: one place decides the bytes, and a broadcast is encoded once.

The protocol is documented for client writers in docs/protocol.md; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Union

import msgpack

from engine.exceptions import ProtocolError
from engine.fixation import MAX_CHUNK_BYTES

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
"""Larger client frames are refused with close code 1009 (the socket layer enforces it)."""
MAX_MEDIA_FRAME_BYTES = MAX_CHUNK_BYTES + MAX_FRAME_BYTES
"""The media socket's limit: a chunk of the largest size, and room for its other fields."""


class CloseCode:
    """WebSocket close codes the server uses, with what each means to a client."""

    NORMAL = 1000  # the sitting is closed (submitted, expired, terminated); do not reconnect
    GOING_AWAY = 1001  # the server shuts down; reconnect and resume
    TOO_BIG = 1009  # a frame over MAX_FRAME_BYTES
    PROTOCOL = 4400  # malformed frame, unknown type, bad field, or hello missing
    UNAUTHORIZED = 4401  # bad, expired or revoked token
    FORBIDDEN = 4403  # the token does not allow this sitting
    HELLO_TIMEOUT = 4408  # no hello within the time allowed
    SUPERSEDED = 4409  # another connection took this sitting over
    GONE = 4410  # the sitting is already closed
    IDLE = 4411  # media socket: nothing sent for a while; open it again when there is
    UNSUPPORTED = 4426  # protocol version not supported
    SERVER_ERROR = 1011  # our fault; reconnect and resume


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every message; `TYPE` is the ``"t"`` tag on the wire."""

    TYPE: ClassVar[str] = ""


_REGISTRY: dict[str, type[Message]] = {}


M = typing.TypeVar("M", bound=Message)


def message(cls: type[M]) -> type[M]:
    """Register a message class under its TYPE."""
    if cls.TYPE in _REGISTRY:
        raise RuntimeError(f"two messages share the type {cls.TYPE!r}")
    _REGISTRY[cls.TYPE] = cls
    return cls


# -- client to server ----------------------------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """First frame on a connection: who I am, which part, which protocol version."""

    TYPE: ClassVar[str] = "hello"
    v: int
    token: str
    part: str
    client: str = ""


@message
@dataclass(frozen=True, slots=True)
class Start(Message):
    """Begin the part in the chosen language (KZ-1); the clock starts now."""

    TYPE: ClassVar[str] = "start"
    language: str


@message
@dataclass(frozen=True, slots=True)
class Answer(Message):
    """An answer; `choice` is the option's position as shown, None clears the answer."""

    TYPE: ClassVar[str] = "answer"
    seq: int
    item: str
    choice: int | None
    flagged: bool = False
    client_time: float | None = None


@message
@dataclass(frozen=True, slots=True)
class Submit(Message):
    TYPE: ClassVar[str] = "submit"


@message
@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Clock sync: the server answers with its time and the remaining time at once."""

    TYPE: ClassVar[str] = "ping"
    id: int
    client_time: float | None = None


SIGNAL_KINDS = frozenset(
    {
        "page-hidden",
        "page-visible",
        "focus-lost",
        "focus-back",
        "fullscreen-exit",
        "fullscreen-enter",
        "copy",
        "paste",
        "second-screen",
        "camera-stopped",
        "microphone-stopped",
        "media-error",
        "no-devices",
    }
)
MAX_LEVELS_PER_FRAME = 600


@message
@dataclass(frozen=True, slots=True)
class Signal(Message):
    """Something the page saw that a proctor may want to know (KZ-4, UA-8)."""

    TYPE: ClassVar[str] = "signal"
    kind: str
    at: float | None = None
    detail: str = ""


@message
@dataclass(frozen=True, slots=True)
class Levels(Message):
    """Microphone loudness (RMS 0..1) at a fixed interval, for the talk detector."""

    TYPE: ClassVar[str] = "levels"
    start: float
    interval_ms: int
    values: list[float]


# -- server to client ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerState:
    """An answer as the candidate sees it: the shown position, not the bank's."""

    item: str
    choice: int | None
    flagged: bool
    seq: int


@message
@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Reply to hello: the sitting as it stands, everything a resume needs except the items."""

    TYPE: ClassVar[str] = "welcome"
    v: int
    sitting: str
    exam: str
    part: str
    title: dict[str, str]
    state: str
    languages: list[str]
    language: str | None
    item_count: int
    time_limit_s: float
    remaining_ms: int
    deadline: float | None
    server_time: float
    next_seq: int
    answers: list[AnswerState] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ItemOut:
    """An item as delivered: no key, options in this candidate's order."""

    id: str
    stem: str
    options: list[str]


@message
@dataclass(frozen=True, slots=True)
class FormOut(Message):
    TYPE: ClassVar[str] = "form"
    language: str
    items: list[ItemOut]


@message
@dataclass(frozen=True, slots=True)
class Clock(Message):
    """The server's clock: sent on start, resume, pause, extra time and periodically."""

    TYPE: ClassVar[str] = "clock"
    state: str
    remaining_ms: int
    deadline: float | None
    server_time: float


@message
@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    id: int
    client_time: float | None
    server_time: float
    remaining_ms: int


@message
@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The answer with this sequence number is on disk."""

    TYPE: ClassVar[str] = "ack"
    seq: int
    item: str


@message
@dataclass(frozen=True, slots=True)
class TimeWarning(Message):
    TYPE: ClassVar[str] = "warning"
    remaining_ms: int
    threshold_s: int


@message
@dataclass(frozen=True, slots=True)
class Notice(Message):
    """A message from a proctor, shown to the candidate."""

    TYPE: ClassVar[str] = "notice"
    text: str
    level: str = "info"


@message
@dataclass(frozen=True, slots=True)
class Status(Message):
    """The sitting's state changed by someone else's hand (admitted, paused, resumed, time)."""

    TYPE: ClassVar[str] = "status"
    state: str
    reason: str = ""


@message
@dataclass(frozen=True, slots=True)
class Closed(Message):
    """The sitting is over; the socket closes with 1000 right after."""

    TYPE: ClassVar[str] = "closed"
    state: str
    reason: str
    answered: int
    result: dict[str, Any] | None = None


@message
@dataclass(frozen=True, slots=True)
class Error(Message):
    """A refusal. With `fatal` the socket closes with `close_code` right after."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    seq: int | None = None
    fatal: bool = False
    close_code: int | None = None


# -- media socket (docs/protocol.md 6.4) -------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class Chunk(Message):
    """A recorder chunk: `seq` counts the sitting's chunks from 1."""

    TYPE: ClassVar[str] = "chunk"
    seq: int
    type: str
    data: bytes
    client_time: float | None = None


@message
@dataclass(frozen=True, slots=True)
class Snapshot(Message):
    """A camera still; the server numbers it. `ref`, if given, comes back in the reply."""

    TYPE: ClassVar[str] = "snapshot"
    type: str
    data: bytes
    ref: int | None = None


@message
@dataclass(frozen=True, slots=True)
class MediaReady(Message):
    """The media socket's answer to hello: send uploads now, each at most this large."""

    TYPE: ClassVar[str] = "media-ready"
    max_chunk_bytes: int
    max_snapshot_bytes: int


@message
@dataclass(frozen=True, slots=True)
class Stored(Message):
    """An upload is on disk and in the journal (the HTTP reply's `200`)."""

    TYPE: ClassVar[str] = "stored"
    kind: str
    seq: int
    sha256: str
    size: int
    server_time: float
    ref: int | None = None


@message
@dataclass(frozen=True, slots=True)
class Refused(Message):
    """An upload not taken, with the HTTP endpoint's error code; `busy`: send it again after
    `retry_after` seconds."""

    TYPE: ClassVar[str] = "refused"
    kind: str
    error: str
    message: str
    seq: int | None = None
    ref: int | None = None
    retry_after: int | None = None


# -- staff (proctor socket) ----------------------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class Watch(Message):
    """First frame on the proctor socket: who I am and which site to watch."""

    TYPE: ClassVar[str] = "watch"
    v: int
    token: str
    site: str | None = None


@message
@dataclass(frozen=True, slots=True)
class Action(Message):
    """A proctor's action on one sitting; answered by `result` with the same id."""

    TYPE: ClassVar[str] = "action"
    id: int
    sitting: str
    kind: str
    text: str = ""
    reason: str = ""
    seconds: float | None = None
    document: str = ""


@message
@dataclass(frozen=True, slots=True)
class Detail(Message):
    """Ask for one sitting's event log and fixation record."""

    TYPE: ClassVar[str] = "detail"
    id: int
    sitting: str


@dataclass(frozen=True, slots=True)
class Tile:
    """One sitting as the proctor's grid shows it."""

    sitting: str
    candidate: str
    name: str
    site: str
    office: str
    document: str
    part: str
    state: str
    answered: int
    total: int
    remaining_ms: int
    deadline: float | None
    connected: bool
    last_seen: float | None
    identity: dict[str, Any] | None
    irregularities: int
    last_irregularity: dict[str, Any] | None
    lost_s: float
    snapshot_at: float | None
    attention: int


@message
@dataclass(frozen=True, slots=True)
class Feed(Message):
    """The site's sittings: all of them when `full`, else only those that changed."""

    TYPE: ClassVar[str] = "feed"
    site: str
    full: bool
    server_time: float
    tiles: list[Tile]


@message
@dataclass(frozen=True, slots=True)
class ActionResult(Message):
    TYPE: ClassVar[str] = "result"
    id: int
    ok: bool
    code: str = ""
    message: str = ""
    access_code: str = ""
    """Set by `new-code` only: the candidate's new one-time access code, shown once."""


@message
@dataclass(frozen=True, slots=True)
class DetailReply(Message):
    TYPE: ClassVar[str] = "detail-reply"
    id: int
    sitting: str
    events: list[dict[str, Any]]
    fixation: list[dict[str, Any]]


@message
@dataclass(frozen=True, slots=True)
class Irregularity(Message):
    """Pushed to the watchers of the sitting's site the moment it is recorded."""

    TYPE: ClassVar[str] = "irregularity"
    sitting: str
    kind: str
    at: float
    detail: str
    source: str


# -- encoding ------------------------------------------------------------------------------------

MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024
"""What a client accepts from the server: a whole form of a large part fits."""

_unpacker_limits: dict[str, int] = {
    "max_array_len": 10_000,
    "max_map_len": 1_000,
    "max_ext_len": 0,
}


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
"""Types msgpack packs as they are: `serialize` passes them through without a look inside."""


def serialize(msg: Message) -> bytes:
    """The one encoder: a msgpack map with ``"t"`` and every field."""
    body: dict[str, Any] = {"t": msg.TYPE}
    for name in _field_names(type(msg)):
        value = getattr(msg, name)
        body[name] = value if type(value) in _SCALARS else _plain(value)
    return typing.cast(bytes, msgpack.packb(body, use_bin_type=True))


def ack_frame(ack: Ack) -> bytes:
    """`serialize(ack)`, spelled out: the server sends one per answer."""
    return typing.cast(
        bytes, msgpack.packb({"t": Ack.TYPE, "seq": ack.seq, "item": ack.item}, use_bin_type=True)
    )


def encode_item(item: ItemOut) -> bytes:
    """One delivered item as msgpack, for `form_frame` to join (and the hall to keep)."""
    return typing.cast(bytes, msgpack.packb(_plain(item), use_bin_type=True))


def form_frame(language: str, encoded_items: Sequence[bytes]) -> bytes:
    """The bytes `serialize(FormOut(language, items))` gives, from items made by `encode_item`.

    A form is about 77 KiB; its items recur across candidates in other orders, so encoding
    each (item, option order, language) once and joining them costs a fraction of a full encode.
    """
    packer = msgpack.Packer(use_bin_type=True)
    head = b"".join(
        (
            packer.pack_map_header(3),
            packer.pack("t"),
            packer.pack(FormOut.TYPE),
            packer.pack("language"),
            packer.pack(language),
            packer.pack("items"),
            packer.pack_array_header(len(encoded_items)),
        )
    )
    return b"".join((head, *encoded_items))  # one copy of the 77 KiB, not two


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, looked up once per class (every frame needs them)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:  # a form's items and options: skip the call per scalar
        return [v if type(v) in _SCALARS else _plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            name: v if type(v := getattr(value, name)) in _SCALARS else _plain(v)
            for name in _field_names(kind)
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def parse(
    frame: bytes | bytearray | memoryview,
    *,
    allowed: frozenset[str] | None = None,
    max_bytes: int = MAX_FRAME_BYTES,
) -> Message:
    """Decode and check one frame; `allowed` limits the types a side accepts.

    The default size limit is the server's for client frames; clients pass
    `MAX_SERVER_FRAME_BYTES` for what the server sends.
    """
    if len(frame) > max_bytes:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds {max_bytes}", code="too_big")
    try:
        body = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            **_unpacker_limits,
        )
    except Exception as error:  # msgpack raises several unrelated types for bad input
        reason = str(error) or type(error).__name__
        raise ProtocolError(f"not valid msgpack: {reason}", code="malformed") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"a frame must be a map, not {type(body).__name__}", code="malformed")
    kind = body.pop("t", None)
    if not isinstance(kind, str):
        raise ProtocolError("a frame needs a string type tag 't'", code="malformed")
    cls = _REGISTRY.get(kind)
    if cls is None or (allowed is not None and kind not in allowed):
        raise ProtocolError(f"unknown message type {kind!r}", code="unknown_type")
    return typing.cast(Message, _build(cls, body, kind))


def _build(cls: type, body: Any, where: str) -> Any:
    if not isinstance(body, dict):
        raise ProtocolError(f"{where}: expected a map, got {type(body).__name__}", code="bad_field")
    names, fields = _fields(cls)
    unknown = body.keys() - names
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {sorted(unknown)}", code="bad_field")
    values = {}
    for name, hint, required, as_is in fields:
        if name in body:
            value = body[name]
            if type(value) in as_is:
                values[name] = value
            else:
                values[name] = _check(hint, value, f"{where}.{name}")
        elif required:
            raise ProtocolError(f"{where}: missing field {name!r}", code="bad_field")
    return cls(**values)


_Field = tuple[str, Any, bool, frozenset[type]]
"""(name, type hint, required, value types `_check` would return unchanged)."""


@cache
def _fields(cls: type) -> tuple[frozenset[str], tuple[_Field, ...]]:
    """(field names, a `_Field` per field), resolved once per class."""
    hints = typing.get_type_hints(cls)
    fields = tuple(
        (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            _taken_as_is(hints[f.name]),
        )
        for f in dataclasses.fields(cls)
    )
    return frozenset(field[0] for field in fields), fields


_PLAIN_HINTS = (str, int, float, bool)


def _taken_as_is(hint: Any) -> frozenset[type]:
    """Value types a hint accepts without conversion: `str`, or `int | None`, not `list[...]`.

    Only a single scalar type (optionally with None) qualifies: in a union like ``float | int``
    an int would be converted by the first option, so nothing is taken as is.
    """
    if hint in _PLAIN_HINTS:
        return frozenset({hint})
    origin, args = _shape(hint)
    if origin in (Union, types.UnionType):
        scalars = [arg for arg in args if arg is not type(None)]
        if len(scalars) == 1 and scalars[0] in _PLAIN_HINTS:
            return frozenset(args)
    return frozenset()


@cache
def _shape(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """`typing.get_origin` and `get_args` of a hint, once per hint."""
    return typing.get_origin(hint), typing.get_args(hint)


def _check(hint: Any, value: Any, where: str) -> Any:
    # The common cases first, with the same rules as the general ones at the end.
    if hint is str:
        if isinstance(value, str):
            return value
        raise ProtocolError(f"{where}: {value!r} is not {_describe(hint)}", code="bad_field")
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is bool and isinstance(value, bool):
        return value
    origin, args = _shape(hint)
    if origin in (Union, types.UnionType):
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check(option, value, where)
            except ProtocolError:
                continue
        raise ProtocolError(f"{where}: {value!r} is not {_describe(hint)}", code="bad_field")
    if hint is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolError(f"{where}: expected a list", code="bad_field")
        (inner,) = args
        if inner is float and all(type(v) is float for v in value):
            return list(value)  # a level series: hundreds of floats, nothing to convert
        return [_check(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ProtocolError(f"{where}: expected a map", code="bad_field")
        key_hint, value_hint = args
        return {
            _check(key_hint, k, f"{where} key"): _check(value_hint, v, f"{where}[{k!r}]")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, where)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise ProtocolError(f"{where}: {value!r} is not {_describe(hint)}", code="bad_field")


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


CLIENT_MESSAGES = frozenset(
    {Hello.TYPE, Start.TYPE, Answer.TYPE, Submit.TYPE, Ping.TYPE, Signal.TYPE, Levels.TYPE}
)
"""What the server accepts on the candidate socket."""
STAFF_MESSAGES = frozenset({Watch.TYPE, Action.TYPE, Detail.TYPE, Ping.TYPE})
"""What the server accepts on the proctor socket."""
MEDIA_MESSAGES = frozenset({Hello.TYPE, Chunk.TYPE, Snapshot.TYPE, Levels.TYPE})
"""What the server accepts on the media socket: uploads, and the levels the page sends there
while it is open (docs/protocol.md 6.4)."""
