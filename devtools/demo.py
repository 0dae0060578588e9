"""``make demo`` (``python -m devtools.demo``): the example contract-end offboarding with
days shortened to seconds, narrated step by step. Unless ``--manual``, the demo plays the
humans too: ops through the CLI (printing each command, so you can type them yourself
next time), finance and the data steward through the links in the mail they received,
on the approvals portal, as they would in a browser. With ``--manual`` it prints those
links for you to open."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx
from rich.markup import escape
from temporalio.client import Client

from devtools import approvers
from devtools.examples import example_client
from devtools.humans import FINANCE, NEEDS_STATUS, STEWARD, Answer, answer
from devtools.scim import ScimClient
from offboarding.cli.connection import connect_for_cli
from offboarding.cli.render import Renderer
from offboarding.client import OffboardingClient, Refused
from offboarding.config import Settings, load_settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import DisputeSettlement
from offboarding.models.stages import Wait
from offboarding.models.status import OffboardingStatus, Step, Timings

MAIL = Path(os.environ.get("OFFBOARDING_RUN_DIR", "data")) / "mail"


def demo_timings(day_seconds: float) -> Timings:
    """Deadlines long enough that the scripted people are never late: at the test's 0.05 s
    days a 6-day reminder came 0.3 s after the approval mail, and on a busy machine it
    beat the scripted approver."""
    return Timings(day_length=timedelta(seconds=day_seconds), meeting_deadline_days=60,
                   settlement_reminder_days=60, settlement_escalation_days=120,
                   data_reminder_days=60, data_escalation_days=120, feedback_deadline_days=60)


def demo_client(settings: Settings, today: date) -> ClientFile:
    """The example client under a new id, ending just after its notice period, with its
    data in place and its accounts active on the systems the workers know, so they are
    really sent and revoked."""
    client = example_client(tag=f"demo-{datetime.now():%H%M%S}",
                            data_root=settings.client_data_root,
                            documents_root=settings.documents_root, tag_users=False,
                            end_date=today + timedelta(days=34))  # notice due in 4 days
    for system in client.systems:
        cfg = settings.scim_systems.get(system.system)
        if cfg is not None:
            scim = ScimClient(str(cfg.base_url), cfg.token.get_secret_value() if cfg.token
                              else None)
            for user in system.users:
                scim.activate(user)
    return client


async def run_demo(ops: OffboardingClient, out: Renderer, day_seconds: float, *,
                   manual: bool, mail: Path = MAIL) -> int:
    settings = load_settings()
    wid = await ops.start(demo_client(settings, date.today()), demo_timings(day_seconds))
    say = out.console.print
    say(f"[bold]started {wid}[/bold]: one contract day lasts {day_seconds}s")
    say(f"watch it in the Web UI: http://localhost:8233/namespaces/default/workflows/{wid}")
    done: set[tuple[str, ...]] = set()

    async def on_change(st: OffboardingStatus, changed: list[Step]) -> None:
        out.narrate(st, changed)
        if st.outcome:
            return
        if manual:
            _print_links(out, st, done, mail)
        else:
            await _play_humans(ops, out, st, done, mail, http)

    async with httpx.AsyncClient(timeout=60) as http:
        await ops.follow(wid, on_change, every=0.3)
    say(f"the mail went to {settings.smtp_host}:{settings.smtp_port} "
        "(under make run: data/mail/, one .eml per message)")
    return 0


def _link(wait: str, st: OffboardingStatus, mail: Path) -> str | None:
    if wait == Wait.SETTLEMENT_APPROVAL:
        subject = f"final settlement v{st.statements[-1].version}"
        return approvers.newest_link(mail, st.workflow_id, FINANCE, subject)
    return approvers.newest_link(mail, st.workflow_id, STEWARD, "ready for transfer")


def _print_links(out: Renderer, st: OffboardingStatus, done: set[tuple[str, ...]],
                 mail: Path) -> None:
    for wait in st.waits:
        found = answer(wait, st) if wait in NEEDS_STATUS else None
        link = _link(wait, st, mail) if found else None
        if found and link and ("link", *found.once) not in done:
            done.add(("link", *found.once))
            who = FINANCE if wait == Wait.SETTLEMENT_APPROVAL else STEWARD
            out.console.print(f"  [cyan]{who}'s link:[/cyan] {escape(link)}")


async def _by_link(out: Renderer, st: OffboardingStatus, found: Answer, link: str,
                   http: httpx.AsyncClient) -> None:
    say = out.console.print
    if found.action == "verify-data":
        say(f"  [cyan]{STEWARD} opens {escape(link)}[/cyan]")
        checked = await approvers.check_download(http, link,
                                                 st.data_packages[-1].manifest_sha256)
        say(f"    downloads the package: {escape(checked)}; presses Confirm")
        page = await approvers.decide(http, link, "verify")
    elif isinstance(found.message, DisputeSettlement):
        say(f"  [cyan]{FINANCE} opens {escape(link)}[/cyan]")
        adjustments = "\n".join(f"{a.description} = {a.amount}"
                                 for a in found.message.adjustments)
        say(f"    presses Dispute: {escape(found.message.reason)}; {escape(adjustments)}")
        page = await approvers.decide(http, link, "dispute", reason=found.message.reason,
                                      adjustments=adjustments)
    else:
        say(f"  [cyan]{FINANCE} opens {escape(link)}[/cyan]")
        say("    presses Approve")
        page = await approvers.decide(http, link, "approve")
    if "your decision was recorded" not in page.text:
        raise Refused(f"the portal did not take the decision (HTTP {page.status_code}); "
                      f"open {link} to see why")
    say("    the portal answers: your decision was recorded")


async def _play_humans(ops: OffboardingClient, out: Renderer, st: OffboardingStatus,
                       done: set[tuple[str, ...]], mail: Path, http: httpx.AsyncClient) -> None:
    for wait in st.waits:
        found = answer(wait, st, dispute_first=True)
        if found is None or found.once in done:
            continue
        if wait in NEEDS_STATUS:
            link = _link(wait, st, mail)
            if link is not None:  # else: no mail yet, or no links (no keys): the CLI
                done.add(found.once)
                await _by_link(out, st, found, link, http)
                continue
        done.add(found.once)
        out.console.print(f"  [cyan]> offboarding {found.action} {st.workflow_id} "
                          f"{escape(found.flags)}[/cyan]")
        ack = await ops.send(st.workflow_id, found.action, found.message)
        out.console.print(f"    accepted: {escape(ack.detail)}")


async def demo_main(argv: list[str], client: Client | None = None,
                    out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__)
    parser.add_argument("--day-seconds", type=float, default=0.5,
                        help="how long one contract day lasts in the demo (default 0.5 s)")
    parser.add_argument("--manual", action="store_true",
                        help="do not send the approvals yourself: wait for a person to")
    parser.add_argument("--address", help="Temporal address; as for the offboarding command")
    parser.add_argument("--mail-dir", type=Path, default=MAIL,
                        help=f"where the captured mail is (default {MAIL}, as make run keeps it)")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        client = client or await connect_for_cli(args, settings)
    except Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    ops = OffboardingClient(client, settings.task_queue,
                            second_ops=settings.require_second_ops)
    return await run_demo(ops, Renderer(out, as_json=False), args.day_seconds,
                          manual=args.manual, mail=args.mail_dir)


if __name__ == "__main__":
    sys.exit(asyncio.run(demo_main(sys.argv[1:])))
