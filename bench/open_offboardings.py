"""Many open offboardings: M started and left waiting on their notice timers. Reports the
worker's resident memory while they wait (default workflow cache) and, once the timers
fire, how long until every one of them has sent its notice."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.stack import Stack, say
from bench.throughput import client_files
from offboarding.client import OffboardingClient
from offboarding.models.status import Timings
from offboarding.temporal import connect, register_search_attributes


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def run(m: int, stack: Stack) -> dict[str, Any]:
    tq = "bench-offboarding"
    client = await connect(stack.address)
    await register_search_attributes(client)
    worker = stack.start_process([sys.executable, "worker.py"], "worker.log", "worker polling")
    idle_rss = rss_mib(worker.pid)
    files = client_files(m, stack, "open", prepare=False)
    # The notice is due two contract days after each start: long enough to start them all.
    day = timedelta(seconds=max(30.0, m / 40))
    cli = OffboardingClient(client, tq)
    cli.timings = Timings(day_length=day)
    say(f"open offboardings: starting {m} (notice due {2 * day.total_seconds():.0f}s after "
        "each start)")
    first = time.monotonic()
    sem = asyncio.Semaphore(64)

    async def start_one(i: int) -> None:
        async with sem:
            await cli.start(files[i])
            if (i + 1) % 500 == 0:
                say(f"  started {i + 1}/{m}")

    await asyncio.gather(*[start_one(i) for i in range(m)])
    last = time.monotonic()
    await asyncio.sleep(5)
    waiting_rss = rss_mib(worker.pid)
    say(f"  all started in {last - first:.0f}s; worker RSS {waiting_rss:.0f} MiB while waiting")
    notices = "Conclusion of our contract"
    while True:
        sent = sum(1 for msg in list(stack.capture.messages) if msg.subject.startswith(notices))
        if sent >= m:
            break
        say(f"  notices sent: {sent}/{m}")
        await asyncio.sleep(5)
    done = time.monotonic()
    return {
        "m": m,
        "start_seconds": last - first,
        "idle_rss_mib": idle_rss,
        "waiting_rss_mib": waiting_rss,
        "after_rss_mib": rss_mib(worker.pid),
        "all_sent_after_last_due_s": done - (last + 2 * day.total_seconds()),
        "all_sent_after_first_due_s": done - (first + 2 * day.total_seconds()),
    }
