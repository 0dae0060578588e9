"""The ops CLI against the dev server: what a person sees and what scripts parse."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from devtools.demo import demo_main
from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.cli.main import run_cli
from offboarding.config import Settings
from tests.conftest import ROOT
from tests.helpers import (
    client_file,
    eventually,
    new_worker,
    portal_server,
    wait_until,
    waiting_for,
)
from tests.unit.test_client_file import _example, _write


@pytest.fixture
async def worker(dev_env: WorkflowEnvironment, settings: Settings,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """A worker on the test's settings, and the CLI configured through the environment
    the same way (``OFFBOARDING_*``), as ops would run it."""
    configure_cli(settings, monkeypatch)
    async with new_worker(dev_env.client, settings):
        yield


def configure_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    monkeypatch.setenv("OFFBOARDING_TASK_QUEUE", settings.task_queue)
    monkeypatch.setenv("OFFBOARDING_TIMINGS__DAY_LENGTH", "PT0.1S")
    monkeypatch.setenv("OFFBOARDING_TIMINGS__SETTLEMENT_ESCALATION_DAYS", "2")
    monkeypatch.setenv("OFFBOARDING_TIMINGS__SETTLEMENT_REMINDER_DAYS", "1000")
    for name in ("smtp_host", "smtp_port", "ops_email", "client_data_root", "documents_root",
                 "transfer_root", "archive_root", "state_dir"):
        monkeypatch.setenv(f"OFFBOARDING_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("OFFBOARDING_SCIM_SYSTEMS", json.dumps({
        k: {"base_url": str(v.base_url), "token": v.token.get_secret_value() if v.token else None}
        for k, v in settings.scim_systems.items()}))


async def cli(env: WorkflowEnvironment, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_cli(list(argv), client=env.client, out=out)
    return code, out.getvalue()


def write_client(folder: Path, scim: ScimServer, **changes: Any) -> Path:
    cf = client_file(end_in_days=32, scim=scim, **changes)
    path = folder / f"{cf.client_id}.yaml"
    path.write_text(yaml.safe_dump(cf.model_dump(mode="json"), sort_keys=False))
    return path


async def start_one(env: WorkflowEnvironment, folder: Path, scim: ScimServer) -> str:
    """Start one offboarding from a client file with the CLI; its workflow id."""
    code, out = await cli(env, "--json", "start", "--client-file",
                          str(write_client(folder, scim)))
    assert code == 0, out
    wid: str = json.loads(out)["workflow_id"]
    return wid


async def test_list_overdue_finds_an_approval_past_its_deadline(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
    mail: MailCapture,
) -> None:
    wid = await start_one(dev_env, tmp_path, scim)
    handle = dev_env.client.get_workflow_handle(wid)
    await wait_until(handle, lambda s: s.overdue, what="overdue settlement")

    async def overdue() -> list[dict[str, Any]]:
        code, out = await cli(dev_env, "--json", "list", "--overdue")
        assert code == 0, out
        rows: list[dict[str, Any]] = json.loads(out)
        return [r for r in rows if r["workflow_id"] == wid]

    # Visibility is eventually consistent.
    [row] = await eventually(overdue, what=f"list --overdue to show {wid}")
    assert row["overdue"] and row["waiting_for"] == "settlement-approval"
    assert row["stage"] == "settlement" and row["status"] == "RUNNING"
    code, out = await cli(dev_env, "list", "--waiting-for", "settlement-approval")
    assert wid in out and "OVERDUE" in out
    code, out = await cli(dev_env, "status", wid)
    assert code == 0 and "OVERDUE" in out and "Financial settlement" in out
    [alert] = mail.to("ops@services.example")
    assert wid in alert.text()
    await cli(dev_env, "cancel", wid, "--by", "ops", "--reason", "test over")


async def test_batch_start_validates_every_file_first(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = [write_client(tmp_path, scim) for _ in range(3)]
    bad = tmp_path / "zz-bad.yaml"
    bad.write_text(good[0].read_text().replace("notice_days: 30", "notice_days: 3"))
    code, _ = await cli(dev_env, "start", "--client-dir", str(tmp_path))
    assert code == 1
    assert "1 of 4 client files are not valid; nothing was started" in capsys.readouterr().err
    assert not [wf async for wf in dev_env.client.list_workflows(
        " OR ".join(f'WorkflowId = "offboarding-{p.stem}"' for p in good))]
    bad.unlink()
    code, out = await cli(dev_env, "--json", "start", "--client-dir", str(tmp_path))
    results = json.loads(out)
    assert code == 0 and [r["started"] for r in results] == [True, True, True]
    code, out = await cli(dev_env, "start", "--client-dir", str(tmp_path))
    assert code == 1 and out.count("NOT started") == 3 and "already being offboarded" in out
    for r in results:
        await cli(dev_env, "cancel", r["workflow_id"], "--by", "ops", "--reason", "test over")


async def test_watch_follows_an_offboarding_until_it_ends(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
    mail: MailCapture,
) -> None:
    wid = await start_one(dev_env, tmp_path, scim)
    watcher = asyncio.create_task(cli(dev_env, "--json", "watch", wid, "--every", "0.1"))
    await wait_until(dev_env.client.get_workflow_handle(wid), waiting_for("notice-period"))
    code, out = await cli(dev_env, "renew", wid, "--by", "ops")
    assert code == 0 and out == "accepted: contract renewed (stage notice-period)\n"
    code, out = await asyncio.wait_for(watcher, 30)
    lines = [json.loads(line) for line in out.splitlines()]
    assert any(line["key"] == "notice" and line["state"] == "done" for line in lines)
    assert lines[-1]["stage"] == "renewed"
    assert {line["key"] for line in lines if line["state"] == "skipped"} >= {"settlement"}


async def test_the_demo_plays_ops_by_the_cli_and_approvers_by_their_links(
    dev_env: WorkflowEnvironment, mail: MailCapture, settings: Settings,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Issue 12: finance and the steward act as people do, from the links in their mail,
    on the portal (served by uvicorn, as make run serves it)."""
    monkeypatch.setattr(mail, "directory", tmp_path / "mail")  # as make run keeps it
    (tmp_path / "mail").mkdir()
    async with portal_server(settings, dev_env.client) as (url, settings):
        configure_cli(settings, monkeypatch)
        async with new_worker(dev_env.client, settings):
            out_io = io.StringIO()
            code = await demo_main(["--day-seconds", "0.05", "--mail-dir",
                                    str(tmp_path / "mail")], client=dev_env.client, out=out_io)
    out = " ".join(out_io.getvalue().split())  # rich wraps long lines
    assert code == 0, out
    assert f"finance.lead@example.com opens {url}/o/" in out
    assert "presses Dispute: Late fee waived; Waived late fee = -150.00" in out
    assert "presses Approve" in out
    assert "downloads the package: manifest" in out and "presses Confirm" in out
    assert out.count("the portal answers: your decision was recorded") == 3
    assert "> offboarding meeting-held" in out  # ops still use the CLI
    assert "> offboarding approve-settlement" not in out
    assert [m.subject for m in mail.to("ap@acme-analytics.example")][1:] == [
        "Final settlement statement v1 for Acme Analytics Ltd",
        "Final settlement statement v2 for Acme Analytics Ltd",
        "Our financial relationship is settled"]
    assert [m.subject for m in mail.to("cfo@example.com")] == [
        "Your decision: final settlement v1 for Acme Analytics Ltd",
        "Your decision: final settlement v2 for Acme Analytics Ltd"]


async def test_user_text_is_printed_literally_in_status_and_watch(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
) -> None:
    """Issue 10, row 8: ``[/]`` is rich markup; in a name, a --by or a cancel reason it
    crashed every later status and watch."""
    path = write_client(tmp_path, scim, client_name="Acme [/] [bold]Ltd")
    code, out = await cli(dev_env, "--json", "start", "--client-file", str(path))
    wid = json.loads(out)["workflow_id"]
    await wait_until(dev_env.client.get_workflow_handle(wid), waiting_for("notice-period"))
    code, out = await cli(dev_env, "cancel", wid, "--by", "[/x]", "--reason", "oops [/] [red]")
    assert code == 0, out
    code, out = await cli(dev_env, "status", wid)
    assert code == 0 and "Acme [/] [bold]Ltd" in out
    assert "cancelled by [/x]: oops [/] [red]" in out
    code, out = await cli(dev_env, "watch", wid, "--every", "0.1")
    assert code == 0 and "cancelled by [/x]: oops [/] [red]" in out


async def test_list_refuses_values_that_are_not_a_stage_or_a_wait(
    dev_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str],
) -> None:
    """Row 14: the value went into the visibility query as written; a quote crashed it."""
    for flag in ("--stage", "--waiting-for"):
        code, _ = await cli(dev_env, "list", flag, 'a" OR WorkflowType != "x')
        assert code == 1
        err = capsys.readouterr().err
        assert f"argument {flag}: invalid choice" in err and "Traceback" not in err


async def test_start_refuses_a_system_the_workers_do_not_know(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Row 19: an unknown system was found only at revocation, weeks later."""
    path = write_client(tmp_path, scim, systems=[{"system": "erp", "users": ["a"]}])
    code, _ = await cli(dev_env, "start", "--client-file", str(path))
    assert code == 1
    assert "systems erp are not configured on the workers (OFFBOARDING_SCIM_SYSTEMS lists: " \
        "crm, wiki); nothing was started" in capsys.readouterr().err


async def test_the_cli_follows_the_server_make_run_wrote_and_takes_flags_after_the_verb(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Row 13: with the server on another port, the CLI silently used localhost:7233."""
    wid = await start_one(dev_env, tmp_path, scim)
    address = dev_env.client.service_client.config.target_host
    env_file = tmp_path / "offboarding.env"
    env_file.write_text(f"OFFBOARDING_TEMPORAL_ADDRESS='{address}'\n")
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", str(env_file))
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    out = io.StringIO()
    assert await run_cli(["status", wid, "--json"], out=out) == 0  # no client injected
    assert json.loads(out.getvalue())["workflow_id"] == wid
    env_file.write_text("OFFBOARDING_TEMPORAL_ADDRESS='127.0.0.1:1'\n")
    assert await run_cli(["status", wid], out=io.StringIO()) == 1
    assert "cannot reach Temporal at 127.0.0.1:1 (from OFFBOARDING_TEMPORAL_ADDRESS)" in \
        capsys.readouterr().err
    await cli(dev_env, "cancel", wid, "--by", "ops", "--reason", "test over")


def _run_starter(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_the_cli_exits_0_or_1_over_a_hundred_runs(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
) -> None:
    """Row 12: about 1 run in 20-100 aborted at exit (PyGILState_Release, exit 134),
    after successes and refusals alike. 120 runs, four at a time, each checked."""
    wid = await start_one(dev_env, tmp_path, scim)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFBOARDING_", "TEMPORAL_"))}
    env.update({"OFFBOARDING_ENV_FILE": "/nonexistent",
                "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host})
    runs: list[tuple[list[str], int]] = [
        (["status", wid, "--json"], 0), (["list", "--all"], 0),
        (["approve-settlement", wid, "--by", "x@example.com", "--statement", "a" * 12], 1),
        (["status", "offboarding-nobody"], 1)]
    plan = [runs[n % len(runs)] for n in range(120)]
    limit = asyncio.Semaphore(4)

    async def one(args: list[str], expected: int) -> tuple[list[str], int, int, str]:
        async with limit:
            done = await asyncio.to_thread(_run_starter, args, env)
        return args, expected, done.returncode, done.stderr[-300:]

    results = await asyncio.gather(*(one(a, e) for a, e in plan))
    wrong = [r for r in results if r[1] != r[2]]
    assert not wrong, wrong[:3]
    await cli(dev_env, "cancel", wid, "--by", "ops", "--reason", "test over")


async def test_start_refuses_a_wrong_file_before_anything_starts(
    dev_env: WorkflowEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    data = _example()
    data["client_id"] = "refused-client"
    data["contract"]["notice_days"] = 5
    path = _write(tmp_path, data)
    code = await run_cli(["start", "--client-file", str(path)], client=dev_env.client)
    assert code == 1
    assert "contract.notice_days: Input should be greater than or equal to 14 (got 5)" in \
        capsys.readouterr().err
    found = [wf async for wf in dev_env.client.list_workflows(
        'WorkflowId = "offboarding-refused-client"')]
    assert found == []


async def test_the_cli_takes_temporals_connection_flags_and_output_modes(
    dev_env: WorkflowEnvironment, worker: None, scim: ScimServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14: the flags ops know from the `temporal` CLI, before or after the verb."""
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    monkeypatch.delenv("TEMPORAL_PROFILE", raising=False)
    address = dev_env.client.service_client.config.target_host
    wid = await start_one(dev_env, tmp_path, scim)

    async def real(*argv: str) -> tuple[int, str, str]:
        out = io.StringIO()
        code = await run_cli(list(argv), out=out)  # connects for real, from the flags
        return code, out.getvalue(), capsys.readouterr().err

    # A profile in Temporal's own config file, named by flags after the verb.
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.test]\naddress = "{address}"\nnamespace = "default"\n')
    code, out, err = await real("status", wid, "--config-file", str(config),
                                "--profile", "test", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["workflow_id"] == wid
    # jsonl: one object per line.
    code, out, err = await real("--address", address, "list", "--all", "-o", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert wid in [r["workflow_id"] for r in rows] and all(isinstance(r, dict) for r in rows)
    # A namespace the server does not have: refused in words, exit 1, no traceback.
    code, out, err = await real("--address", address, "-n", "no-such-namespace",
                                "status", wid)
    assert code == 1 and "no-such-namespace" in err and "Traceback" not in err
    # TLS material that cannot be read is named.
    code, out, err = await real("status", wid, "--address", address,
                                "--tls-ca-path", str(tmp_path / "missing.pem"))
    assert code == 1 and f"--tls-ca-path {tmp_path / 'missing.pem'}: No such file" in err
