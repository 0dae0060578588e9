"""Blocking file work inside async activities.

The worker's event loop also runs every workflow, so reading, compressing and writing
files happen in a thread. The activity keeps heartbeating from the loop meanwhile (the
SDK's heartbeat is not callable from another thread): a long export or archive shows it
is alive, and a worker killed in the middle is noticed within the heartbeat timeout
rather than the much longer start-to-close timeout. ``Progress`` does the same for work
done in steps on the loop, only once it has run long enough to need it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

T = TypeVar("T")
BEAT_AFTER = 1.0
"""Seconds an activity runs before its progress is heartbeated (see Progress)."""


class Progress:
    """An activity's progress, heartbeated once the activity has run for ``BEAT_AFTER`` seconds.

    The SDK sends an activity's first heartbeat to the server at once, so a heartbeat per
    account or per data set cost a server round trip in every revocation and export, even
    one that ends in milliseconds (three per offboarding in make bench). A quick activity
    needs none: the heartbeat timeout runs from the activity's start, which a beat in its
    first second could move by no more than that second. Long work still shows its
    progress and proves it is alive."""

    def __init__(self) -> None:
        self.started, self.after = time.monotonic(), BEAT_AFTER

    def __call__(self, *details: Any) -> None:
        if time.monotonic() - self.started >= self.after:
            activity.heartbeat(*details)


async def in_thread(fn: Callable[..., T], *args: Any, detail: str = "",
                    every: float = 5.0) -> T:
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    while True:
        done, _ = await asyncio.wait({work}, timeout=every)
        if done:
            return work.result()
        activity.heartbeat(detail)
