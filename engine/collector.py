"""Bulk work that builds millions of long-lived objects, kept out of the cyclic collector's way.

Forms for a whole roster and results for a million candidates hold no reference cycles and the
caller keeps them, yet every young collection during the build walks what was built so far to
find nothing; for 100,000 forms or 1,000,000 results that walk was a third or more of the time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector for the block, then file what it built as old objects.

    `gc.freeze` + `gc.unfreeze` move every tracked object to the oldest generation without a
    walk, so the next collections do not pay for the block either. Not done when the collector
    is off or the process keeps frozen objects (a server does; unfreezing would release them).
    """
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()
