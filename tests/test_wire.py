"""Every message round-trips, and every kind of bad frame is refused with its reason."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from engine import wire
from engine.exceptions import ProtocolError

SAMPLES: list[wire.Message] = [
    wire.Hello(1, "token", "legislation", "test"),
    wire.Start("kk"),
    wire.Answer(3, "po-001", 2, True, 1.5),
    wire.Answer(4, "po-001", None),
    wire.Submit(),
    wire.Ping(7, None),
    wire.Welcome(
        1,
        "s",
        "e",
        "p",
        {"kk": "T"},
        "running",
        ["kk", "ru"],
        "kk",
        120,
        5400.0,
        10,
        2e9,
        1e9,
        5,
        [wire.AnswerState("a", 1, False, 4)],
    ),
    wire.FormOut("kk", [wire.ItemOut("a", "stem", ["x", "y"])]),
    wire.Clock("running", 1000, 2e9, 1e9),
    wire.Pong(7, None, 1e9, 1000),
    wire.Ack(3, "po-001"),
    wire.TimeWarning(299_000, 300),
    wire.Notice("Look at the camera", "warning"),
    wire.Closed("submitted", "submitted by the candidate", 100, {"score": 90.0}),
    wire.Error("too_late", "after the deadline", 5, False, None),
    wire.Signal("focus-lost", 1.5, "alt-tab"),
    wire.Levels(1e9, 100, [0.0, 0.25, 1.0]),
    wire.Status("checked-in", "admitted by proctor-1"),
    wire.Watch(1, "token", None),
    wire.Action(3, "e/c/p", "grant-time", reason="noise", seconds=120.0),
    wire.Detail(4, "e/c/p"),
    wire.Feed(
        "site-a",
        True,
        1e9,
        [
            wire.Tile(
                "e/c/p",
                "c",
                "Name",
                "site-a",
                "",
                "900514300305",
                "p",
                "running",
                3,
                12,
                1000,
                2e9,
                True,
                1e9,
                {"by": "p1", "at": 1.0},
                1,
                {"kind": "focus-lost", "at": 1.0, "detail": "", "source": "client"},
                0.0,
                None,
                2,
            )
        ],
    ),
    wire.ActionResult(3, False, "forbidden", "observers do not act"),
    wire.DetailReply(4, "e/c/p", [{"seq": 1, "kind": "started"}], []),
    wire.Irregularity("e/c/p", "talk", 1e9, "speech for 4.2 s", "talk"),
    wire.Chunk(2, "video/webm", b"\x1a\x45\xdf\xa3 and more", 1.5),
    wire.Snapshot("image/jpeg", b"\xff\xd8\xff", 7),
    wire.MediaReady(4 * 1024 * 1024, 512 * 1024),
    wire.Stored("chunk", 2, "ab" * 32, 19, 1e9, None),
    wire.Refused("chunk", "busy", "send it again in 5 s", 2, None, 5),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.TYPE)
def test_every_message_round_trips(msg: wire.Message) -> None:
    assert wire.parse(wire.serialize(msg)) == msg


def test_every_registered_type_has_a_sample() -> None:
    assert {type(m) for m in SAMPLES} == set(wire._REGISTRY.values())


def frame(**fields: object) -> bytes:
    return msgpack.packb(fields)


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        (b"\xc1", "malformed", "not valid msgpack"),
        (b"\x93\x01", "malformed", "not valid msgpack"),
        (msgpack.packb([1, 2]), "malformed", "must be a map"),
        (frame(seq=1), "malformed", "type tag"),
        (frame(t="launch"), "unknown_type", "unknown message type 'launch'"),
        (frame(t="welcome", v=1), "unknown_type", "unknown message type 'welcome'"),
        (frame(t="answer", seq="1", item="a", choice=0), "bad_field", "answer.seq: '1' is not int"),
        (frame(t="answer", seq=True, item="a", choice=0), "bad_field", "answer.seq"),
        (frame(t="answer", seq=1, item="a"), "bad_field", "missing field 'choice'"),
        (frame(t="answer", seq=1, item="a", choice=0, x=1), "bad_field", "unknown field"),
        (frame(t="answer", seq=1, item=["a"], choice=0), "bad_field", "answer.item"),
        (frame(t="answer", seq=1, item="a", choice=1.5), "bad_field", "answer.choice"),
        (b"\xdb" + (1 << 20).to_bytes(4, "big"), "malformed", "not valid msgpack"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw: bytes, code: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason) as refused:
        wire.parse(raw, allowed=wire.CLIENT_MESSAGES)
    assert refused.value.code == code
    assert refused.value.close_code == wire.CloseCode.PROTOCOL


def test_a_frame_over_the_limit_is_refused_before_decoding() -> None:
    raw = frame(t="start", language="x" * wire.MAX_FRAME_BYTES)
    with pytest.raises(ProtocolError, match="exceeds") as refused:
        wire.parse(raw)
    assert refused.value.code == "too_big"


def test_messages_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        wire.Ack(1, "a").seq = 2  # type: ignore[misc]


def test_the_ack_frame_is_what_serialize_gives() -> None:
    ack = wire.Ack(41, "kz-po-0007")
    assert wire.ack_frame(ack) == wire.serialize(ack)
    assert wire.parse(wire.ack_frame(ack), max_bytes=wire.MAX_SERVER_FRAME_BYTES) == ack
