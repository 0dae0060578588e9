"""Blocking file work inside async activities.

The worker's event loop also runs every workflow, so reading, compressing and writing
files happen in a thread. The activity keeps heartbeating from the loop meanwhile (the
SDK's heartbeat is not callable from another thread): a long export or archive shows it
is alive, and a worker killed in the middle is noticed within the heartbeat timeout
rather than the much longer start-to-close timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any, detail: str = "",
                    every: float = 5.0) -> T:
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    while True:
        done, _ = await asyncio.wait({work}, timeout=every)
        if done:
            return work.result()
        activity.heartbeat(detail)
