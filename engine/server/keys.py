"""Every typed key of the aiohttp application, in one place."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

from engine.latency import CollectorPauses, LoopLag, Uploads
from engine.server.config import ServerConfig
from engine.server.hall import Hall
from engine.server.quiet_sockets import QuietSockets
from engine.server.upload_gate import UploadGate
from engine.store.base import Store

if TYPE_CHECKING:
    from engine.server.media_link import MediaLink

CONFIG = web.AppKey("config", ServerConfig)
STORE = web.AppKey("store", Store)
HALL = web.AppKey("hall", Hall)
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
LOOP_LAG = web.AppKey("loop_lag", LoopLag)
UPLOADS = web.AppKey("uploads", Uploads)
UPLOAD_GATE = web.AppKey("upload_gate", UploadGate)
QUIET_MEDIA = web.AppKey("quiet_media", QuietSockets)
MEDIA_LINK: web.AppKey[MediaLink] = web.AppKey("media_link")
COLLECTOR = web.AppKey("collector", CollectorPauses)
"""Set by `examhall serve` only: the collector hook is process-wide."""
