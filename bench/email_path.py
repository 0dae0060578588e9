"""Email path: messages per second rendered and delivered by the email activity, against
a plain baseline of aiosmtplib sending the same prepared messages, one connection each.

Both run in this process against the same local SMTP server (aiosmtpd, in a thread), one
message after another, ``--reps`` times; the medians and their ratio are reported. (With
the server in a process of its own, writing each message to disk before it answers, both
sides wait on the server's disk and the ratio falls to about 1.1.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiosmtplib
from temporalio.testing import ActivityEnvironment

from devtools import mailcapture
from devtools.procs import free_port
from offboarding.activities.email import Mailer
from offboarding.config import Settings
from offboarding.models.records import EmailRequest

CONTEXT = {"contact": {"name": "Priya Raman"}, "client_name": "Acme Analytics Ltd",
           "account_manager": "Dana Whitfield, Client Services"}


def requests(n: int, rep: int) -> list[EmailRequest]:
    return [EmailRequest(workflow_id=f"bench-{rep}", key=f"check-in-{i}", template="check_in",
                         to=["priya.raman@acme-analytics.example"], context=CONTEXT)
            for i in range(n)]


async def measure(n: int, reps: int) -> dict[str, float]:
    port = free_port()
    controller, capture = mailcapture.start("127.0.0.1", port)
    baseline, ours = [], []
    try:
        for rep in range(reps):
            with tempfile.TemporaryDirectory() as state:
                settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port,
                                    state_dir=Path(state))
                mailer = Mailer(settings)
                prepared = [mailer.render(r) for r in requests(n, rep)]
                start = time.perf_counter()
                for msg in prepared:
                    await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)
                baseline.append(n / (time.perf_counter() - start))
                env = ActivityEnvironment()
                start = time.perf_counter()
                for req in requests(n, rep):
                    await env.run(mailer.send_email, req)
                ours.append(n / (time.perf_counter() - start))
        assert len(capture.messages) == 2 * n * reps, "every message was delivered"
    finally:
        controller.stop()
    result = {"baseline_msgs_per_s": statistics.median(baseline),
              "activity_msgs_per_s": statistics.median(ours)}
    result["ratio"] = result["activity_msgs_per_s"] / result["baseline_msgs_per_s"]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    r = asyncio.run(measure(args.messages, args.reps))
    print(f"baseline (aiosmtplib, one connection per message): "
          f"{r['baseline_msgs_per_s']:.0f} msg/s")
    print(f"email activity (render + outbox + send):           "
          f"{r['activity_msgs_per_s']:.0f} msg/s")
    print(f"ratio: {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
