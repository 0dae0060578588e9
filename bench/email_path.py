"""Email path: messages per second rendered and delivered by the email activity, against
a plain baseline of aiosmtplib sending the same prepared messages, one connection each.

Both run in this process against the same local SMTP server (aiosmtpd, in a thread), one
message after another, ``--reps`` times; the medians and their ratio are reported. (With
the server in a process of its own, writing each message to disk before it answers, both
sides wait on the server's disk and the ratio falls to about 1.1.)

Servers (``--security``): ``none``, plain SMTP, where a new connection costs almost
nothing; and ``starttls``, a server that requires STARTTLS and then AUTH before it takes a
message, as a production relay does, with a CA and a server certificate it signs made for
the run (RSA 2048, ``devtools/tls_smtp.py``). There the worker runs with
``smtp_security=starttls``, a user and password, and ``smtp_ca_file`` naming the test CA:
its ``SmtpPool`` builds one TLS context from that file on its first connection and shares
it among its connections. The baseline is what a naive client writes:
``aiosmtplib.send(..., start_tls=True, username=..., password=...,
cert_bundle=<the CA file>)`` per message, for which aiosmtplib builds a TLS context per
call from OpenSSL's defaults, the system's CA bundle included, and adds the CA file to it.
A second baseline, stricter, passes a context it builds per call from the CA file alone
(``tls_context=ssl.create_default_context(cafile=...)``): a new connection then costs the
TCP connection, the TLS handshake and the login, not the system's CAs. A third figure,
``SmtpPool.send`` of the same prepared bytes, is the transport alone.

``measure_all`` and ``report_lines`` are what ``bench/run.py`` uses; ``--write`` writes
``bench/results-email.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from email.message import Message
from pathlib import Path
from typing import Any

import aiosmtplib
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from bench.report import verdict
from devtools import mailcapture, tls_smtp
from devtools.procs import free_port
from offboarding.activities.email import Mailer
from offboarding.activities.mime import SMTP_WIRE
from offboarding.activities.smtp_pool import SmtpPool
from offboarding.config import Settings
from offboarding.models.records import EmailRequest

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = {"contact": {"name": "Priya Raman"}, "client_name": "Acme Analytics Ltd",
           "account_manager": "Dana Whitfield, Client Services"}
SENDER = "client-services@example.com"
HOST = tls_smtp.HOST
TARGET = 3.0
"""Issue 24: pooled email over STARTTLS + AUTH >= 3x one connection per message."""
"""bench/run.py's plain line: the email activity >= 2x one connection per message."""


def requests(n: int, rep: int) -> list[EmailRequest]:
    return [EmailRequest(workflow_id=f"bench-{rep}", key=f"check-in-{i}", template="check_in",
                         to=["priya.raman@acme-analytics.example"], context=CONTEXT)
            for i in range(n)]


async def _rate(n: int, sends: Awaitable[None]) -> float:
    start = time.perf_counter()
    await sends
    return n / (time.perf_counter() - start)


async def one_per_message(prepared: list[Message], port: int, auth: dict[str, Any],
                          ca_file: Path | None = None, ca_only: bool = False) -> None:
    """The baseline: ``aiosmtplib.send`` per message, trusting ``ca_file`` (over TLS) as
    ``cert_bundle`` (aiosmtplib's context per call: the system's CAs and the file) or,
    ``ca_only``, through a context built for each message from the file alone."""
    for msg in prepared:
        trust: dict[str, Any] = {}
        if ca_file is not None:
            trust = ({"tls_context": ssl.create_default_context(cafile=ca_file)} if ca_only
                     else {"cert_bundle": str(ca_file)})
        await aiosmtplib.send(msg, hostname=HOST, port=port, **auth, **trust)


async def through_activity(mailer: Mailer, reqs: list[EmailRequest]) -> None:
    env = ActivityEnvironment()
    for req in reqs:
        await env.run(mailer.send_email, req)


async def through_pool(pool: SmtpPool, raw: list[tuple[bytes, list[str]]]) -> None:
    for data, to in raw:
        await pool.send(SENDER, to, data)


async def measure(n: int, reps: int, security: str = "none") -> dict[str, float]:
    """``security``: ``none`` (plain SMTP) or ``starttls`` (STARTTLS and AUTH required,
    the worker trusting the test CA through ``smtp_ca_file``). Messages per second of the
    baseline, the email activity and the pool alone, and their ratios; over ``starttls``
    also the stricter baseline (``*_ca_only``)."""
    if security not in ("none", "starttls"):
        raise ValueError(f"security: none or starttls, not {security!r}")
    tls = security == "starttls"
    ca_file: Path | None
    with contextlib.ExitStack() as stack:
        if tls:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            server = stack.enter_context(tls_smtp.serve(tmp))
            port, capture, ca_file = server.port, server.capture, server.certificates.ca_file
            # The server does require both.
            assert "STARTTLS" in await tls_smtp.refused(server, start_tls=False)
            assert "uthenticat" in await tls_smtp.refused(server, start_tls=True)
            auth: dict[str, Any] = {"start_tls": True, "username": tls_smtp.USER,
                                    "password": tls_smtp.PASSWORD}
        else:
            port = free_port()
            controller, capture = mailcapture.start(HOST, port)
            stack.callback(controller.stop)
            ca_file = None
            auth = {}
        figures: dict[str, list[float]] = {}

        def note(name: str, value: float) -> None:
            figures.setdefault(name, []).append(value)

        for rep in range(reps):
            with tempfile.TemporaryDirectory() as state:
                settings = Settings(
                    _env_file=None, smtp_host=HOST, smtp_port=port,
                    smtp_security="starttls" if tls else "none", state_dir=Path(state),
                    smtp_username=tls_smtp.USER if tls else None,
                    smtp_password=SecretStr(tls_smtp.PASSWORD) if tls else None,
                    smtp_ca_file=ca_file)
                mailer = Mailer(settings)
                prepared = [mailer.render(r) for r in requests(n, rep)]

                note("baseline", await _rate(n, one_per_message(prepared, port, auth, ca_file)))
                if tls:
                    note("baseline_ca_only", await _rate(n, one_per_message(
                        prepared, port, auth, ca_file, ca_only=True)))
                note("activity", await _rate(n, through_activity(mailer, requests(n, rep))))
                mailer.pool.close()
                pool = SmtpPool(settings)
                raw = [(msg.as_bytes(policy=SMTP_WIRE), [str(msg["To"])]) for msg in prepared]
                note("pool", await _rate(n, through_pool(pool, raw)))
                pool.close()
        assert len(capture.messages) == len(figures) * n * reps, "every message was delivered"
    result = {f"{name}_msgs_per_s": statistics.median(values)
              for name, values in figures.items()}
    result["ratio"] = result["activity_msgs_per_s"] / result["baseline_msgs_per_s"]
    result["pool_ratio"] = result["pool_msgs_per_s"] / result["baseline_msgs_per_s"]
    if tls:
        strict = result["baseline_ca_only_msgs_per_s"]
        result["ratio_ca_only"] = result["activity_msgs_per_s"] / strict
        result["pool_ratio_ca_only"] = result["pool_msgs_per_s"] / strict
    return result


async def measure_all(messages: int, reps: int) -> dict[str, dict[str, float]]:
    """Plain SMTP and STARTTLS + AUTH, one after the other: ``{"plain": ..., "starttls":
    ...}``, each with ``activity_msgs_per_s``, ``baseline_msgs_per_s`` and ``ratio`` (and
    more: see ``measure``)."""
    return {"plain": await measure(messages, reps, "none"),
            "starttls": await measure(messages, reps, "starttls")}


def _against(figures: dict[str, float], baseline: str, ratio: str) -> str:
    return (f"{figures['activity_msgs_per_s']:.0f} vs {figures[baseline]:.0f} msg/s, ratio "
            f"{figures[ratio]:.2f}")


def report_lines(result: dict[str, dict[str, float]]) -> list[str]:
    """Markdown lines for a list of targets (results.md): the STARTTLS + AUTH target
    against the naive baseline, the same against the stricter one, and the plain line."""
    out = []
    tls = result.get("starttls")
    if tls:
        out.append(f"- pooled email over STARTTLS + AUTH >= {TARGET:g}x one connection per "
                   f"message: {_against(tls, 'baseline_msgs_per_s', 'ratio')}, "
                   f"{verdict(tls['ratio'] >= TARGET)}")
        if "ratio_ca_only" in tls:
            out.append(f"  - against one connection per message whose TLS context holds the "
                       f"CA file alone (not the system's CAs): "
                       f"{_against(tls, 'baseline_ca_only_msgs_per_s', 'ratio_ca_only')}, "
                       f"{verdict(tls['ratio_ca_only'] >= TARGET)}")
    plain = result.get("plain")
    if plain:
        out.append(f"- email over plain SMTP, for comparison (no target: a new connection to "
                   f"a local server without TLS or AUTH costs almost nothing): "
                   f"{_against(plain, 'baseline_msgs_per_s', 'ratio')}")
    return out


NAMES = {"plain": "plain SMTP", "starttls": "STARTTLS + AUTH required"}


def table(result: dict[str, dict[str, float]]) -> list[str]:
    out = ["| server | one connection per message (aiosmtplib.send) msg/s | email activity "
           "(render + outbox + pooled send) msg/s | **ratio activity / one per message** | "
           "SmtpPool.send alone msg/s | ratio pool / one per message |",
           "|---|---|---|---|---|---|"]
    for name, r in result.items():
        out.append(f"| {NAMES[name]}{', cert_bundle' if 'ratio_ca_only' in r else ''} | "
                   f"{r['baseline_msgs_per_s']:.0f} | {r['activity_msgs_per_s']:.0f} | "
                   f"**{r['ratio']:.2f}** | {r['pool_msgs_per_s']:.0f} | "
                   f"{r['pool_ratio']:.2f} |")
        if "ratio_ca_only" in r:
            out.append(f"| {NAMES[name]}, a context from the CA file alone per message | "
                       f"{r['baseline_ca_only_msgs_per_s']:.0f} | "
                       f"{r['activity_msgs_per_s']:.0f} | **{r['ratio_ca_only']:.2f}** | "
                       f"{r['pool_msgs_per_s']:.0f} | {r['pool_ratio_ca_only']:.2f} |")
    return out


EXPLAINED = """\
What the rows are. Every figure is one message after another from this one process, against
aiosmtpd in a thread of it. "One connection per message" is `aiosmtplib.send` of messages
rendered beforehand: a new connection, and over TLS `STARTTLS` (TLS 1.3, an RSA 2048 server
certificate signed by a CA made for the run) and `AUTH` each time. It trusts the test CA
either as a naive client does, `cert_bundle=<CA file>`, for which aiosmtplib builds a TLS
context per call with the system's CAs loaded and the file added (about 46 ms of CPU per
context on this machine, most of a new connection); or, stricter, through a context it
builds per call from the CA file alone, which leaves TCP, the handshake and the login.
"Email activity" is the worker's `Mailer.send_email` (render, flatten, outbox claim and
record, send over its `SmtpPool`), with `smtp_security=starttls`, a user and password and
`smtp_ca_file` naming the test CA for the TLS rows: the pool builds one TLS context from
that file on its first connection and shares it. "SmtpPool.send alone" sends the same
prepared bytes over the pool, without rendering or outbox. The server refuses a message
without STARTTLS and without AUTH; both are checked before the TLS rows. The machine may be
shared: ratios of the same run are the figures to compare."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--security", default="none,starttls",
                   help="comma-separated: none (plain), starttls (STARTTLS and AUTH "
                        "required)")
    p.add_argument("--write", action="store_true", help="write bench/results-email.md")
    args = p.parse_args()
    modes = [m for m in args.security.split(",") if m]
    keys = {"none": "plain", "starttls": "starttls"}
    if not modes or not set(modes) <= set(keys):
        p.error("--security: one or more of none, starttls")
    result = {}
    for security in modes:
        name = keys[security]
        print(f"== {NAMES[name]}: {args.messages} messages x {args.reps}", flush=True)
        result[name] = asyncio.run(measure(args.messages, args.reps, security))
    text = "\n".join([*table(result), "", "Targets:", "", *report_lines(result)])
    print(text)
    if args.write:
        load = os.getloadavg()
        (ROOT / "bench" / "results-email.md").write_text(
            f"# Email path results\n\n`.venv/bin/python -m bench.email_path "
            f"{' '.join(sys.argv[1:])}`\n\nMachine: {os.cpu_count()} cores; 1-minute load "
            f"average {load[0]:.1f} at the end. {args.messages} messages, one after another, "
            f"medians of {args.reps} repetitions.\n\n{text}\n\n{EXPLAINED}\n")


if __name__ == "__main__":
    main()
