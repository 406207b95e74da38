"""The server's settings, with the embedded defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.resources import bundled_banks_dir
from engine.wire import MAX_FRAME_BYTES


@dataclass(frozen=True, slots=True)
class ServerConfig:
    data_dir: Path
    banks_dir: Path = field(default_factory=bundled_banks_dir)
    exams_dir: Path = field(default_factory=lambda: bundled_banks_dir() / "exams")
    demo: bool = False
    """Expose the demo roster (unused access codes) to anyone: never in production."""
    token_ttl_s: float = 12 * 3600
    hello_timeout_s: float = 10.0
    tick_interval_s: float = 15.0
    """Each running sitting gets a clock this often, on its own phase."""
    clock_check_s: float = 0.1
    """How often the hall sends the clocks that fell due since (a few dozen at 10,000)."""
    max_frame_bytes: int = MAX_FRAME_BYTES
    heartbeat_s: float = 20.0
    feed_interval_s: float = 0.5
    """How often changed tiles go out to proctors."""
    uploads_at_once: int = 256
    """Media uploads under way beyond which new ones are asked to come back later
    (engine/server/upload_gate.py)."""
    media_quiet_s: float = 60.0
    """A media socket that sent nothing for this long is closed; the page opens it again."""
    media_port: int | None = None
    """Serve the media sockets from a process of their own on this port (0: any free one;
    engine/server/media_process.py); None: the serving process serves them itself."""
    media_host: str = "127.0.0.1"
    media_public_url: str | None = None
    """The media socket's address as pages reach it (behind a proxy); by default the host the
    page signed in at, with `media_port`."""
    media_nice: int = 5
    """How much lower the media process's priority is: when cores are short, answers first."""
    media_retention_days: float | None = None
    """Delete the media of sittings closed this long ago (records stay); None keeps it."""
