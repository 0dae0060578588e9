"""``make demo`` (``python -m devtools.demo``): the example contract-end offboarding with
days shortened to seconds, narrated step by step. Unless ``--manual``, the demo plays the
humans too, printing each command it sends so you can send them yourself next time."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import httpx
from rich.markup import escape

from offboarding.cli.client import OffboardingClient, Refused
from offboarding.cli.main import connect_for_cli
from offboarding.cli.render import Renderer
from offboarding.config import Settings, load_settings
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import load_client_file
from offboarding.models.messages import (
    Adjustment,
    ApproveSettlement,
    DisputeSettlement,
    MeetingHeld,
    Message,
    RecordFeedback,
    VerifyData,
)
from offboarding.models.status import OffboardingStatus, Step, Timings

if TYPE_CHECKING:
    from temporalio.client import Client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def demo_client(today: date) -> ClientFile:
    base = load_client_file(EXAMPLES / "contract-end.yaml")
    data = base.model_dump(mode="json")
    data["client_id"] = f"{base.client_id}-demo-{datetime.now():%H%M%S}"
    notice = base.contract.notice_days
    data["contract"]["end_date"] = (today + timedelta(days=notice + 4)).isoformat()
    data["contract"]["renewal_offer"]["valid_until"] = None
    for data_set in data["data_sets"]:  # each client's data lives in its own folder
        data_set["path"] = "/".join([data["client_id"], *data_set["path"].split("/")[1:]])
    return ClientFile.model_validate(data)


def prepare(settings: Settings, client: ClientFile) -> None:
    """Make sure the example's accounts and data exist, so they are really revoked/sent."""
    for system in client.systems:
        cfg = settings.scim_systems.get(system.system)
        if cfg is None:
            continue
        headers = {"Content-Type": "application/scim+json"}
        if cfg.token:
            headers["Authorization"] = f"Bearer {cfg.token.get_secret_value()}"
        with httpx.Client(base_url=str(cfg.base_url).rstrip("/") + "/", headers=headers) as http:
            for user in system.users:
                found = http.get("Users", params={"filter": f'userName eq "{user}"'}).json()
                if found.get("totalResults"):
                    uid = found["Resources"][0]["id"]
                    http.patch(f"Users/{uid}", json={
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "active", "value": True}]})
                else:
                    http.post("Users", json={
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": user, "active": True})
    example = load_client_file(EXAMPLES / "contract-end.yaml")
    pairs = [(settings.client_data_root / mine.path, EXAMPLES / "client-data" / theirs.path)
             for mine, theirs in zip(client.data_sets, example.data_sets, strict=True)]
    pairs += [(settings.documents_root / doc.path, EXAMPLES / "documents" / doc.path)
              for doc in client.documents]
    for target, source in pairs:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy)(source, target)


async def run_demo(ops: OffboardingClient, out: Renderer, day_seconds: float, *,
                   manual: bool) -> int:
    settings = load_settings()
    client = demo_client(date.today())
    prepare(settings, client)
    timings = Timings(day_length=timedelta(seconds=day_seconds), meeting_deadline_days=10,
                      settlement_reminder_days=6, settlement_escalation_days=20,
                      data_reminder_days=6, data_escalation_days=20, feedback_deadline_days=10)
    wid = await ops.start(client, timings)
    say = out.console.print
    say(f"[bold]started {wid}[/bold]: one contract day lasts {day_seconds}s")
    say(f"watch it in the Web UI: http://localhost:8233/namespaces/default/workflows/{wid}")
    done: set[str] = set()

    async def on_change(st: OffboardingStatus, changed: list[Step]) -> None:
        out.narrate(st, changed)
        if not manual and not st.outcome:
            await _play_humans(ops, out, st, done)

    await ops.follow(wid, on_change, every=0.3)
    say(f"the mail went to {settings.smtp_host}:{settings.smtp_port} "
        "(under make run: data/mail/, one .eml per message)")
    return 0


def _next_decision(st: OffboardingStatus) -> tuple[str, str, Message, str] | None:
    """What a person would do now: (key to do it once, action, message, CLI flags)."""
    waits = (st.waiting_for or "").split(",")
    finance = "finance.lead@example.com"
    steward = "tom.becker@acme-analytics.example"
    if "meeting" in waits:
        return ("meeting", "meeting-held", MeetingHeld(by="ops", notes="Reviewed KPIs"),
                "--by ops --notes 'Reviewed KPIs'")
    if "settlement-approval" in waits:
        stmt = st.statements[-1]
        if stmt.version == 1:
            return (f"statement-{stmt.version}", "dispute-settlement", DisputeSettlement(
                by=finance, statement_hash=stmt.short_hash, reason="Late fee waived",
                adjustments=[Adjustment(description="Waived late fee", amount="-150.00")]),
                f"--by {finance} --statement {stmt.short_hash} --reason 'Late fee waived' "
                "--adjust 'Waived late fee=-150.00'")
        return (f"statement-{stmt.version}", "approve-settlement",
                ApproveSettlement(by=finance, statement_hash=stmt.short_hash),
                f"--by {finance} --statement {stmt.short_hash}")
    if "data-verification" in waits:
        pkg = st.data_packages[-1]
        checksum = hashlib.sha256((Path(pkg.location) / "manifest.json").read_bytes()).hexdigest()
        return (f"export-{pkg.attempt}", "verify-data", VerifyData(by=steward, checksum=checksum),
                f"--by {steward} --checksum {checksum}")
    if "feedback" in waits:
        return ("feedback", "record-feedback",
                RecordFeedback(by="ops", nps=9, csat=5, comment="Great partnership"),
                "--by ops --nps 9 --csat 5 --comment 'Great partnership'")
    return None


async def _play_humans(ops: OffboardingClient, out: Renderer, st: OffboardingStatus,
                       done: set[str]) -> None:
    decision = _next_decision(st)
    if decision is None or decision[0] in done:
        return
    key, action, msg, flags = decision
    done.add(key)
    out.console.print(f"  [cyan]> python starter.py {action} {st.workflow_id} "
                      f"{escape(flags)}[/cyan]")
    ack = await ops.send(st.workflow_id, action, msg)
    out.console.print(f"    accepted: {escape(ack.detail)}")


async def demo_main(argv: list[str], client: Client | None = None,
                    out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__)
    parser.add_argument("--day-seconds", type=float, default=0.5,
                        help="how long one contract day lasts in the demo (default 0.5 s)")
    parser.add_argument("--manual", action="store_true",
                        help="do not send the approvals yourself: wait for a person to")
    parser.add_argument("--address", help="Temporal address; as for starter.py")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        client = client or await connect_for_cli(args.address, settings)
    except Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    ops = OffboardingClient(client, settings.task_queue,
                            second_ops=settings.require_second_ops)
    return await run_demo(ops, Renderer(out, as_json=False), args.day_seconds,
                          manual=args.manual)


if __name__ == "__main__":
    sys.exit(asyncio.run(demo_main(sys.argv[1:])))
