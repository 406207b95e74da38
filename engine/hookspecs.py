"""The hooks a plugin may implement. Built-in schemes use exactly these, nothing private.

Implement a hook with the `engine.hookimpl` marker in a module or object, and list that module
under the entry-point group ``examhall`` of your package (see docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from engine.schemes import Scheme

PROJECT = "examhall"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def examhall_register_schemes(register: Callable[[Scheme], None]) -> None:
    """Register scoring schemes by calling ``register(SchemeInstance())`` once for each.

    A name registered twice, by the same or another plugin, is reported as a `PluginError`
    naming both plugins; neither is trusted.
    """
