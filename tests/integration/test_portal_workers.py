"""The approvals portal as several processes sharing its address (issue 24,
``OFFBOARDING_PORTAL_WORKERS``), started as make run starts it, on the dev server with a
real worker and real mail: each process starts and serves approvers' pages (its pid is in
its log lines), a link's page and decision work, a killed process is replaced, and SIGTERM
to the portal stops every one of its processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from devtools import stack
from devtools.mailcapture import MailCapture
from devtools.procs import free_port, stop
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient, Refused
from offboarding.config import Settings
from offboarding.models.messages import Cancel
from offboarding.models.status import Timings
from tests.conftest import ROOT
from tests.helpers import client_file, eventually, links_to, new_worker, wait_until, waiting_for

STARTED = re.compile(r"\[(\d+)\] Application startup complete")
SERVED = re.compile(r"\[(\d+)\] \S+ - \"GET /o/\S+ HTTP/1\.1\" 200")
PATIENT = Timings(settlement_reminder_days=1000, settlement_escalation_days=1000,
                  data_reminder_days=1000, data_escalation_days=1000)


def _pids(log: Path, pattern: re.Pattern[str]) -> set[int]:
    return {int(pid) for pid in pattern.findall(log.read_text())}


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_two_portal_processes_serve_links_and_stop_together(
        dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
        scim: ScimServer, tmp_path: Path) -> None:
    port = free_port()
    settings = settings.model_copy(update={"portal_url": f"http://127.0.0.1:{port}",
                                           "portal_address": f"127.0.0.1:{port}"})
    address = dev_env.client.service_client.config.target_host
    log = tmp_path / "portal.log"
    portal = subprocess.Popen([sys.executable, "-m", "offboarding.portal.main"],
                              env=stack.worker_env(settings, address,
                                                   OFFBOARDING_PORTAL_WORKERS="2"),
                              cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        async with new_worker(dev_env.client, settings), httpx.AsyncClient() as http:
            cf = client_file("termination", scim=scim)
            wid = await cli.start(cf, PATIENT)
            handle = dev_env.client.get_workflow_handle(wid)

            async def started() -> set[int]:
                assert portal.poll() is None, log.read_text()
                return _pids(log, STARTED)

            processes = await eventually(started, lambda pids: len(pids) == 2, timeout=60,
                                         what="both portal processes to start")
            assert {_parent_of(pid) for pid in processes} == {portal.pid}
            assert "with 2 processes" in log.read_text()
            await wait_until(handle, waiting_for("settlement-approval"))
            [link] = links_to(mail, cf.approvers.finance[0], "final settlement v1")

            async def view() -> set[int]:
                # Approvers opening their mail, each view on a connection of its own, 4
                # at a time for 2 s. Not one burst: an idle process's event loop accepts
                # every connection waiting when it wakes, so which process takes a burst
                # is the scheduler's whim (once, one took every burst for 20 s); under
                # steady load, connections come while a process is busy with a page.
                async def approver() -> None:
                    async with httpx.AsyncClient() as fresh:
                        page = await fresh.get(link)
                        assert page.status_code == 200 and "Statement v1" in page.text

                async def approver_for_2s() -> None:
                    deadline = asyncio.get_running_loop().time() + 2
                    while asyncio.get_running_loop().time() < deadline:
                        await approver()
                await asyncio.gather(*(approver_for_2s() for _ in range(4)))
                return _pids(log, SERVED)

            await eventually(view, lambda pids: pids == processes, timeout=20,
                             what="a page served by each process",
                             show=lambda pids: f"pages by {sorted(pids)} of {sorted(processes)}")

            # A process killed outright is replaced; the pages go on being served.
            os.kill(min(processes), signal.SIGKILL)
            replaced = await eventually(started, lambda pids: len(pids) == 3, timeout=60,
                                        what="the killed process to be replaced")
            assert (await http.get(link)).status_code == 200

            base, token = link.rsplit("/", 1)
            decided = await http.post(base + "/decide",
                                      data={"token": token, "decision": "approve"})
            assert decided.status_code == 303
            st = await wait_until(handle, lambda st: st.step("settlement").state == "done")
            assert (st.decisions[-1].action, st.decisions[-1].via) == (
                "approve-settlement", "link")
            with contextlib.suppress(Refused):
                await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        live = {pid for pid in replaced if _alive(pid)}
        assert len(live) == 2
        portal.send_signal(signal.SIGTERM)
        assert portal.wait(timeout=15) == 0, log.read_text()[-3000:]
    finally:
        stop(portal)
    assert not any(_alive(pid) for pid in live), log.read_text()[-3000:]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "something still listens"
    text = log.read_text()
    assert text.count("Finished server process") == 2, text[-3000:]
    token = link.rsplit("/", 1)[1]
    assert token not in text, "a link is a credential: the access log hides it"
