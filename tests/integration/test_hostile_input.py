"""Odd and hostile input against a real server (issue 10): no payload anyone can send
stops an offboarding, odd client files run to the end, and nothing approaches Temporal's
limits. Each test failed on the code before the fix it names."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from devtools.mailcapture import MailCapture
from devtools.procs import start_logged, stop
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.loading import load_client_file
from offboarding.models.messages import (
    Adjustment,
    ApproveSettlement,
    Cancel,
    DisputeSettlement,
    RetryStep,
    VerifyData,
)
from offboarding.models.status import OffboardingResult, OffboardingStatus, Timings
from offboarding.security.codec import ForgivingCodec, data_converter, load_keys, new_key_file
from offboarding.temporal import connect
from offboarding.workflows.offboarding import ClientOffboarding
from tests.conftest import ROOT
from tests.helpers import client_file, new_worker, status_of, wait_until, waiting_for, worker_env
from tests.integration.test_data_files import undeletable

FAST = Timings(day_length=timedelta(seconds=0.2), settlement_reminder_days=1000,
               settlement_escalation_days=1000, data_reminder_days=1000,
               data_escalation_days=1000)


def cli_for(env: WorkflowEnvironment, settings: Settings,
            timings: Timings = FAST) -> OffboardingClient:
    cli = OffboardingClient(env.client, settings.task_queue)
    cli.timings = timings
    return cli


async def approve_and_verify(cli: OffboardingClient, handle: WorkflowHandle[Any, Any]) -> None:
    st = await wait_until(handle, waiting_for("settlement-approval"))
    await cli.send(handle.id, "approve-settlement", ApproveSettlement(
        by="finance.lead@example.com", statement_hash=st.statements[-1].short_hash))
    st = await wait_until(handle, waiting_for("data-verification"))
    await cli.send(handle.id, "verify-data", VerifyData(
        by="mindy@globex.example", checksum=st.data_packages[-1].manifest_sha256))


def temporal_signal(cli_path: str, address: str, wid: str, name: str, data: bytes | str,
                    *meta: str) -> None:
    """``temporal workflow signal`` with raw bytes and metadata (or JSON text), as anyone
    with namespace access can send."""
    args = [cli_path, "workflow", "signal", "--address", address, "--workflow-id", wid,
            "--name", name]
    args += ["--input", data] if isinstance(data, str) else \
        ["--input-base64", "--input", base64.b64encode(data).decode()]
    for m in meta:
        args += ["--input-meta", m]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def test_a_payload_that_does_not_decode_is_ignored_and_the_history_replays(
    dev_env: WorkflowEnvironment, temporal_cli: str, settings: Settings, mail: MailCapture,
    scim: ScimServer, tmp_path: Path,
) -> None:
    """Row 1: garbage ciphertext, a rotated-out key id and a signal nobody handles, sent
    with the Temporal CLI to the real worker process, which holds the keys."""
    keys = tmp_path / "keys.json"
    new_key_file(keys)
    codec = load_keys(keys, None, None)
    assert codec is not None
    address = dev_env.client.service_client.config.target_host
    env = {**worker_env(settings, address), "OFFBOARDING_CODEC_KEY_FILE": str(keys)}
    worker = await asyncio.to_thread(start_logged, [sys.executable, "worker.py"],
                                     tmp_path / "worker.log", "worker polling", env=env,
                                     cwd=ROOT)
    try:
        ops = await connect(address, codec)
        cli = OffboardingClient(ops, settings.task_queue)
        wid = await cli.start(client_file("termination", scim=scim))
        handle = ops.get_workflow_handle(wid)
        await wait_until(handle, waiting_for("settlement-approval"), what="settlement")
        encrypted = "encoding=binary/encrypted"
        temporal_signal(temporal_cli, address, wid, "approve-settlement", os.urandom(64),
                        encrypted, "encryption-key-id=k9")
        temporal_signal(temporal_cli, address, wid, "approve-settlement", os.urandom(64),
                        encrypted, f"encryption-key-id={codec.active}")
        temporal_signal(temporal_cli, address, wid, "approve-everything", '{"by": "x"}')
        st = await wait_until(handle, lambda s: len(s.ignored) == 3, what="three ignored")
        whys = [i.why for i in st.ignored]
        assert whys[0] == "payload cannot be decoded: payload encrypted with unknown key 'k9'"
        assert whys[1].startswith(f"payload cannot be decoded: payload marked as encrypted "
                                  f"with key '{codec.active}' does not decrypt")
        assert st.ignored[2].action == "approve-everything"
        assert whys[2].startswith("no such action; the actions are: approve-gate, "
                                  "approve-settlement")
        assert st.step("settlement").state == "waiting" and not st.decisions, "no change"
        await approve_and_verify(cli, handle)  # and the offboarding goes on
        await wait_until(handle, lambda s: s.step("data-transfer").state == "done")
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await ops.get_workflow_handle(wid, result_type=OffboardingResult).result()
        history = await handle.fetch_history()
    finally:
        stop(worker, timeout=30)
    replayer = Replayer(workflows=[ClientOffboarding],
                        data_converter=data_converter(ForgivingCodec(codec)))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_a_client_with_no_systems_has_nothing_to_revoke(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    """Row 2: ``systems: []`` failed every workflow task at access revocation."""
    cf = client_file("termination", scim=scim, systems=[])
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("settlement-approval"))
        access = st.step("access-revocation")
        assert (access.state, access.detail) == (
            "skipped", "no systems listed in the client file: nothing to revoke")
        assert not [m for m in mail.to(cf.contacts.primary.email)
                    if m.subject == "Access to our systems has ended"]
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()


async def test_a_purge_that_fails_waits_for_ops_and_then_deletes(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    """Row 5: the purge failed and retried forever, with nothing deleted and nobody told."""
    cf = client_file("termination", scim=scim, retention_days=1, follow_up_days=200)
    data = settings.client_data_root / cf.data_sets[0].path
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        with undeletable(data):
            await approve_and_verify(cli, handle)
            st = await wait_until(handle, waiting_for("ops-action"), what="purge problem")
            [problem] = st.problems
            assert problem.key == "purge" and problem.step == "data-retention"
            assert f"could not delete {cf.data_sets[0].path}" in problem.why
            assert st.step("data-retention").detail.startswith("NEEDS OPS (purge)")
            await wait_until(handle, lambda s: bool(mail.to(settings.ops_email)), what="alert")
            assert "retry-step" in mail.to(settings.ops_email)[0].text()
        await cli.send(wid, "retry-step", RetryStep(by="ops", problem="purge"))
        st = await wait_until(handle, lambda s: s.step("data-retention").state == "done")
        assert not data.exists() and st.data_purged[0] == cf.data_sets[0].name
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()


def _largest_payload(history_json: dict[str, Any]) -> int:
    sizes: list[int] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "data" in node and "metadata" in node and isinstance(node["data"], str):
                sizes.append(len(base64.b64decode(node["data"])))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(history_json)
    return max(sizes)


async def test_a_client_file_at_every_limit_stays_far_below_temporals(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
    tmp_path: Path,
) -> None:
    """Row 6: with 10,000 invoices and two disputes the status query failed and the
    archive's input passed 2 MB. At the documented limits, after two disputes of the
    most adjustments each: every payload and the status stay under 1 MB."""
    invoice = {"amount": "100.00", "issued": "2026-01-01", "due": "2026-02-01"}
    cf = client_file("termination", scim=scim, account={
        "currency": "EUR",
        "invoices": [{"number": f"INV-{n:04d}-{'x' * 150}", **invoice} for n in range(1000)],
        "credits": [{"reference": f"CR-{n:03d}", "amount": "1.00", "reason": "r" * 190}
                    for n in range(500)],
        "prepayments": [{"reference": f"DEP-{n:03d}", "amount": "1.00"} for n in range(100)]})
    path = tmp_path / "client.yaml"
    path.write_text(yaml.safe_dump(cf.model_dump(mode="json")))
    load_client_file(path)  # a valid file: within every documented limit
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        for n in range(2):
            def issued(s: OffboardingStatus, n: int = n) -> bool:
                return len(s.statements) == n + 1 and waiting_for("settlement-approval")(s)

            st = await wait_until(handle, issued)
            await cli.send(wid, "dispute-settlement", DisputeSettlement(
                by="finance.lead@example.com", statement_hash=st.statements[-1].short_hash,
                reason="many corrections", adjustments=[
                    Adjustment(description=f"correction {n}-{i} " + "d" * 170, amount="-1.00")
                    for i in range(50)]))
        await approve_and_verify(cli, handle)
        st = await wait_until(handle, lambda s: s.step("archive").state == "done",
                              timeout=60, what="archive")
        assert [s.lines_omitted > 0 for s in st.statements] == [True, True, False]
        assert len(st.statements[-1].lines) == 1000 + 500 + 100 + 100
        status_bytes = len(json.dumps(
            (await status_of(handle)).model_dump(mode="json")).encode())
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()
    history = (await handle.fetch_history()).to_json_dict()
    assert status_bytes < 1_000_000
    assert _largest_payload(history) < 1_000_000
