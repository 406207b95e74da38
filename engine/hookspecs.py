"""The hooks a plugin may implement. Built-in schemes use exactly these, nothing private.

Implement a hook with the `engine.hookimpl` marker in a module or object, and list that module
under the entry-point group ``examhall`` of your package (docs/plugins.md walks through it).

Schemes are registered objects rather than a hook per question, because an exam is scored by
*one* scheme, the one it names, while a pluggy hook asks *every* plugin (the llm ``register_models``
pattern). `examhall_register_schemes` hands the engine `engine.schemes.Scheme` instances; their
methods are the per-scheme hooks, each typed and documented there:

==================  =========================================================================
``part_specs``      the part structure and blueprint the scheme expects (checked per exam)
``score_part``      a numpy response matrix of a whole part → a `PartResult` per candidate
``annulled``        the result of a terminated sitting; ``absent`` that of a no-show
``combine``         each candidate's part results → an `ExamResult` (pass / fail / annulled,
                    with reasons)
``rank``            exam results → `RatingList`s with a documented, deterministic tie order
``result_terms``    validity end and earliest retake of a result (KZ-8, KZ-9)
``admit``           admission checks against the person's earlier sittings (retake rules)
``appeal_policy``   whether and how results may be appealed (UA-16)
``document_kinds``  the documents the scheme produces; ``build_documents`` their content
==================  =========================================================================

Every call goes through `engine.checked_scheme.CheckedScheme`: a plugin that raises, returns the
wrong type, NaN, a score above the maximum, or results for the wrong candidates is reported as
a `PluginError` naming the plugin.
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

    Called once when the scheme registry is built. A name registered twice, by the same or
    another plugin, is reported as a `PluginError` naming both plugins; neither is trusted.
    """
