"""The foundation: both real Temporal servers, a real activity, a real worker process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devtools.mailcapture import MailCapture
from devtools.procs import free_port, start_logged, wait_for_port
from devtools.scim import ScimServer
from offboarding.activities.email import Mailer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel, VerifyData
from offboarding.models.records import EmailRequest
from offboarding.models.status import OffboardingResult
from tests.conftest import ROOT, SCIM_TOKEN
from tests.helpers import client_file, make_run_env, wait_until, waiting_for, worker_env
from tests.infra_workflows import SendOneEmail, SleepForDays


async def test_thirty_day_sleep_takes_seconds_on_the_time_skipping_server(
    ts_env: WorkflowEnvironment,
) -> None:
    start = time.monotonic()
    async with Worker(ts_env.client, task_queue="sleep", workflows=[SleepForDays]):
        result = await ts_env.client.execute_workflow(
            SleepForDays.run, 30, id=f"sleep-{uuid.uuid4()}", task_queue="sleep")
    assert result == "slept 30 days"
    assert time.monotonic() - start < 10


async def test_a_workflow_with_a_real_email_activity_completes_on_the_dev_server(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
) -> None:
    req = EmailRequest(workflow_id="infra-check", key="hello", template="check_in",
                       to=["someone@client.example"],
                       context={"contact": {"name": "Sam"}, "client_name": "Initech",
                                "account_manager": "Client Services"})
    async with Worker(dev_env.client, task_queue=settings.task_queue, workflows=[SendOneEmail],
                      activities=[Mailer(settings).send_email]):
        receipt = await dev_env.client.execute_workflow(
            SendOneEmail.run, req, id=f"email-{uuid.uuid4()}", task_queue=settings.task_queue)
    [msg] = mail.messages
    assert msg.recipients == ["someone@client.example"]
    assert msg.subject == "Checking in from your former partners"
    assert "Dear Sam," in msg.text() and "<p>Dear Sam,</p>" in msg.html()
    assert msg.message_id == receipt.message_id == "<hello.infra-check@offboarding.example.com>"


def _metrics(port: int) -> dict[str, float]:
    """The Prometheus exposition as {'name{labels}': value}."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _sum(samples: dict[str, float], name: str, *labels: str) -> float:
    return sum(v for k, v in samples.items()
               if k.split("{")[0] == name and all(label in k for label in labels))


async def test_the_worker_process_runs_an_offboarding_with_metrics_and_clean_logs(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
    tmp_path: Path,
) -> None:
    address = dev_env.client.service_client.config.target_host
    log = tmp_path / "worker.log"
    metrics_port = free_port()
    proc = await asyncio.to_thread(start_logged, [sys.executable, "worker.py"], log,
                                   "worker polling", cwd=Path(ROOT),
                                   env=worker_env(settings, address, metrics_port))
    try:
        cf = client_file("termination", scim=scim)
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("settlement-approval"), what="settlement")
        assert st.step("access-revocation").state == "done"
        before = _metrics(metrics_port)
        assert _sum(before, "offboarding_started", 'reason="termination"') == 1
        assert _sum(before, "offboarding_accounts_revoked", 'result="deleted"') == 1
        assert _sum(before, "offboarding_emails_sent") >= 2
        assert _sum(before, "temporal_workflow_task_execution_latency_count") > 0
        statement = st.statements[-1]
        await cli.send(wid, "approve-settlement",
                       ApproveSettlement(by="finance.lead@example.com",
                                         statement_hash=statement.short_hash))
        st = await wait_until(handle, waiting_for("data-verification"), what="data")
        await cli.send(wid, "verify-data", VerifyData(
            by="mindy@globex.example", checksum=st.data_packages[-1].manifest_sha256))
        st = await wait_until(handle, lambda s: s.stage == "keep-in-touch", what="keep in touch")
        assert st.step("farewell").state == "done"
        [farewell] = [m for m in mail.to("hank@globex.example")
                      if m.subject.startswith("Closing our engagement")]
        assert farewell.attachments() == ["closure-report.html"]
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        result = await dev_env.client.get_workflow_handle(
            wid, result_type=OffboardingResult).result()
        assert result.outcome == "cancelled"
        after = _metrics(metrics_port)
        assert _sum(after, "offboarding_emails_sent") == len(result.status.emails) > \
            _sum(before, "offboarding_emails_sent")
        assert _sum(after, "offboarding_cancelled", 'reason="termination"') == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    out = log.read_text()
    assert proc.returncode == 0, out
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert entries[-1]["msg"] == "worker stopped"
    steps = {(e.get("workflow_id"), e.get("step")) for e in entries}
    # Temporal's context is in fields, once, not appended to each message as well.
    assert not [e["msg"] for e in entries if "'workflow_id'" in e["msg"]
                or "'activity_id'" in e["msg"]]
    assert any(e.get("activity") == "send_email" for e in entries)
    assert (wid, "settlement") in steps and (wid, "farewell") in steps
    assert SCIM_TOKEN not in out and "Dear " not in out, "no secrets, no message bodies"
    accounts = [user for system in cf.systems for user in system.users]
    assert accounts and not [a for a in accounts if a in out], "no client's account names"


def test_a_bad_setting_stops_the_worker_with_the_variable_named() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARDING_")}
    env.update({"OFFBOARDING_SMTP_PORT": "seventy", "OFFBOARDING_SMTP_PASSWORD": "s3cret",
                "OFFBOARDING_TIMINGS__SETTLEMENT_REMINDER_DAYS": "-1",
                "OFFBOARDING_ENV_FILE": "/nonexistent"})
    proc = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "OFFBOARDING_SMTP_PORT (smtp_port) = 'seventy'" in proc.stderr
    assert "OFFBOARDING_TIMINGS (timings.settlement_reminder_days) = '-1'" in proc.stderr
    assert "s3cret" not in proc.stderr


def test_an_smtp_ca_file_the_worker_cannot_use_stops_it_at_start(tmp_path: Path) -> None:
    """Issue 24: a private relay's CA file, mistyped, is found before the first mail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARDING_")}
    missing = tmp_path / "relay-ca.pem"
    env.update({"OFFBOARDING_SMTP_CA_FILE": str(missing), "OFFBOARDING_ENV_FILE": "/nonexistent"})
    proc = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "OFFBOARDING_SMTP_CA_FILE" in proc.stderr and str(missing) in proc.stderr


def test_make_run_restarts_a_worker_that_died_and_keeps_the_servers_up(
    temporal_cli: str, tmp_path: Path,
) -> None:
    """Issue 10, row 18: a worker killed under `make run` stopped the whole stack."""
    env, ports = make_run_env(temporal_cli, tmp_path)
    log = tmp_path / "run.log"
    run = start_logged([sys.executable, "-m", "devtools.run"], log, "Ctrl-C stops everything",
                       env=env, cwd=ROOT, timeout=120)
    worker_log = tmp_path / "logs" / "worker.log"

    def polling(times: int) -> None:
        deadline = time.monotonic() + 60
        while worker_log.read_text().count("worker polling") < times:
            assert time.monotonic() < deadline, worker_log.read_text()[-2000:]
            time.sleep(0.2)

    try:
        first = int(re.findall(r"pid (\d+), task queue", log.read_text())[0])
        polling(1)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "restarted it as pid" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        [second] = re.findall(r"the worker \(pid \d+\) exited with -9; restarted it as pid (\d+)",
                              log.read_text())
        assert run.poll() is None, "the stack is still up"
        wait_for_port(ports["TEMPORAL_PORT"], timeout=5)
        polling(2)
        os.kill(int(second), 0)  # the new worker is alive
        portal = f"http://127.0.0.1:{ports['OFFBOARDING_DEV_PORTAL_PORT']}"
        assert f"Approvals portal     {portal}" in log.read_text()
        wait_for_port(ports["OFFBOARDING_DEV_PORTAL_PORT"], timeout=30)
        assert httpx.get(portal + "/healthz", timeout=10).text == "ok"
        env_file = (tmp_path / "offboarding.env").read_text()
        assert f"OFFBOARDING_TEMPORAL_ADDRESS='127.0.0.1:{ports['TEMPORAL_PORT']}'" in env_file
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
    assert "stopped." in log.read_text()
