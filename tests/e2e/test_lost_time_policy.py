"""A scheme whose policy gives lost time back at once: the deadline moves on reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from engine import hookimpl
from engine.plugins import SchemeRegistry, create_plugin_manager
from plugins.kz_prosecutor import KzProsecutorScheme
from tests.e2e.conftest import Running


class ForgivingScheme(KzProsecutorScheme):
    lost_time_policy: ClassVar[str] = "automatic"


class ForgivingPlugin:
    @hookimpl
    def examhall_register_schemes(self, register: Any) -> None:
        register(ForgivingScheme())


async def test_automatic_policy_returns_lost_time_on_reconnect(
    start_server: Callable[..., Awaitable[Running]],
) -> None:
    manager = create_plugin_manager(builtins=(), entry_points=False)
    manager.register(ForgivingPlugin())
    running = await start_server(schemes=SchemeRegistry(manager))
    client, _ = await running.candidate()
    await client.start("kk")
    assert client.view.clock is not None and client.view.clock.deadline is not None
    deadline = client.view.clock.deadline
    await client.drop()
    await asyncio.sleep(1.2)
    welcome = await client.resume()
    assert welcome.deadline is not None and welcome.deadline - deadline >= 1.2
    sitting = running.hall.live[welcome.sitting].sitting
    assert sitting.snapshot.lost_s == 0 and sitting.snapshot.extra_s >= 1.2
    events = await running.hall.store.events_of(welcome.sitting)
    returned = [e for e in events if e["kind"] == "lost-time-returned"]
    assert returned and returned[0]["data"]["by"] == "policy"
    await client.close()


async def test_the_default_policy_leaves_lost_time_to_the_proctor(running: Running) -> None:
    client, _ = await running.candidate()
    await client.start("kk")
    assert client.view.clock is not None
    deadline = client.view.clock.deadline
    await client.drop()
    await asyncio.sleep(0.6)
    welcome = await client.resume()
    assert welcome.deadline == deadline
    assert running.hall.live[welcome.sitting].sitting.snapshot.lost_s >= 0.6
    await client.close()
