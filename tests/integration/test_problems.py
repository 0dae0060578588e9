"""Faults only people can fix become visible pending actions for ops, never failed
offboardings: a refused recipient, a SCIM system refusing our token, an archive store that
cannot be written. Ops fix the cause and retry, or skip with a reason."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import (
    ApproveSettlement,
    Cancel,
    FixContact,
    RetryStep,
    SkipStep,
    VerifyData,
)
from tests.faults import FaultProxy
from tests.helpers import client_file, new_worker, status_of, wait_until, waiting_for


def cli_for(env: WorkflowEnvironment, settings: Settings) -> OffboardingClient:
    return OffboardingClient(env.client, settings.task_queue)


async def approve_and_verify(cli: OffboardingClient, handle: WorkflowHandle[Any, Any],
                             cf: ClientFile) -> None:
    st = await wait_until(handle, waiting_for("settlement-approval"))
    await cli.send(handle.id, "approve-settlement", ApproveSettlement(
        by=cf.approvers.finance[0], statement_hash=st.statements[-1].short_hash))
    st = await wait_until(handle, waiting_for("data-verification"))
    manifest = Path(st.data_packages[-1].location) / "manifest.json"
    await cli.send(handle.id, "verify-data", VerifyData(
        by=cf.approvers.data_verification[0],
        checksum=hashlib.sha256(manifest.read_bytes()).hexdigest()))


async def test_a_refused_recipient_waits_for_ops_to_fix_the_contact(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    cf = client_file("termination", scim=scim)
    bad = cf.contacts.primary.email
    mail.refuse.add(bad)
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("ops-action"))
        [problem] = st.problems
        assert problem.key == "mail-access-revoked" and bad in problem.why
        assert st.step("access-revocation").detail.startswith("NEEDS OPS (mail-access-revoked)")
        await wait_until(handle, lambda s: bool(mail.to(settings.ops_email)), what="alert")
        [alert] = mail.to(settings.ops_email)
        assert "retry-step" in alert.text() and bad in alert.text()
        assert st.outcome is None
        fix = FixContact(by="ops", role="primary", email="hank.scorpio@globex.example")
        ack = await cli.send(wid, "fix-contact", fix)
        assert "proposed by ops; a second ops person must confirm" in ack.detail
        ack = await cli.send(wid, "fix-contact", fix.model_copy(update={"by": "ops-lead"}))
        assert ack.detail == f"primary contact changed from {bad} to hank.scorpio@globex.example"
        st = await wait_until(handle, waiting_for("settlement-approval"))
        [revoked] = mail.to("hank.scorpio@globex.example")
        assert revoked.subject == "Access to our systems has ended"
        assert st.problems[0].resolution == "retry" and st.problems[0].resolved_by == "ops-lead"
        assert not st.waiting_for or "ops-action" not in st.waiting_for
        await approve_and_verify(cli, handle, cf)
        st = await wait_until(handle, lambda s: s.step("farewell").state == "done")
        farewell = [m for m in mail.to("hank.scorpio@globex.example")
                    if m.subject.startswith("Closing our engagement")]
        assert len(farewell) == 1, "later mail goes to the fixed address too"
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()


async def test_in_a_termination_a_refused_settlement_mail_holds_up_the_settlement(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    """Settlement and data transfer run side by side in a termination: a problem is shown
    on the step whose mail was refused, not on whichever branch last moved the stage."""
    cf = client_file("termination", scim=scim)
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, lambda s: set(s.waits) == {
            "settlement-approval", "data-verification"}, what="both branches waiting")
        assert st.stage == "data-transfer"  # the branch that moved the stage last
        mail.refuse.add(cf.contacts.billing.email)
        await cli.send(wid, "approve-settlement", ApproveSettlement(
            by=cf.approvers.finance[0], statement_hash=st.statements[-1].short_hash))
        st = await wait_until(handle, waiting_for("ops-action"))
        [problem] = st.problems
        assert (problem.key, problem.step) == ("mail-settlement-confirmed", "settlement")
        assert st.step("settlement").detail.startswith("NEEDS OPS (mail-settlement-confirmed)")
        assert not st.step("data-transfer").detail.startswith("NEEDS OPS")
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()


async def test_a_refused_scim_token_waits_for_ops_then_retries_or_skips(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    cf = client_file(scim=scim, end_in_days=None, reason="termination",
                     termination={"cause": "Breach"})
    wrong = settings.model_copy(update={"scim_systems": {
        **settings.scim_systems,
        "wiki": settings.scim_systems["wiki"].model_copy(update={"token": None})}})
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, wrong):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("ops-action"))
        [problem] = st.problems
        assert problem.key == "access-wiki"
        assert "wiki: looking up" in problem.why and "refused (401)" in problem.why
        # The other system does not wait for ops: its accounts are revoked meanwhile.
        await wait_until(handle, lambda s: all(
            scim.users("crm")[u]["active"] is False for u in cf.systems[0].users),
            what="crm revoked")
    # Ops fix the token (a worker with the right settings) and retry.
    async with new_worker(dev_env.client, settings):
        await cli.send(wid, "retry-step", RetryStep(by="ops", problem="access-wiki"))
        st = await wait_until(handle, lambda s: s.step("access-revocation").state == "done")
        assert cf.systems[1].users[0] not in scim.users("wiki")
        assert st.step("access-revocation").detail == \
            "3 account(s) on 2 system(s) revoked"
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()

    # Skipping instead records who skipped what, and why; nothing is claimed revoked.
    cf2 = client_file(scim=scim, end_in_days=None, reason="termination",
                      termination={"cause": "Breach"})
    async with new_worker(dev_env.client, wrong):
        wid2 = await cli.start(cf2)
        handle2 = dev_env.client.get_workflow_handle(wid2)
        await wait_until(handle2, waiting_for("ops-action"))
        skip = SkipStep(by="dana", problem="access-wiki", reason="wiki decommissioned last week")
        await cli.send(wid2, "skip-step", skip)  # leaving accounts open takes two people
        await cli.send(wid2, "skip-step", skip.model_copy(update={"by": "ops-lead"}))
        st = await wait_until(handle2, lambda s: s.step("access-revocation").state == "done")
        assert "wiki: skipped by ops, accounts NOT revoked" in st.step("access-revocation").detail
        assert st.problems[0].note == "wiki decommissioned last week"
        assert cf2.systems[1].users[0] in scim.users("wiki")
        [revoked_mail] = [m for m in mail.messages
                          if m.message_id == f"<access-revoked.{st.records_key}"
                                             "@offboarding.example.com>"]
        assert "wiki: skipped by ops, accounts NOT revoked" in revoked_mail.text()
        await cli.send(wid2, "cancel", Cancel(by="ops", reason="test over"))
        await handle2.result()
        # A cancel stops running steps; that is never a problem for ops.
        assert [p.key for p in (await status_of(handle2)).problems] == ["access-wiki"]


async def test_an_unwritable_archive_waits_for_ops_and_nothing_half_written(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    settings.archive_root.parent.mkdir(parents=True, exist_ok=True)
    settings.archive_root.write_text("not a directory")  # the store cannot be written
    cf = client_file("termination", scim=scim)
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        await approve_and_verify(cli, handle, cf)
        st = await wait_until(handle, waiting_for("ops-action"))
        [problem] = st.problems
        assert problem.key == "archive"
        assert f"the archive store {settings.archive_root} is not writable" in problem.why
        assert settings.archive_root.read_text() == "not a directory"
        assert (await status_of(handle)).step("farewell").state == "pending"
        # Ops make room, then retry: the archive is written whole and the farewell follows.
        settings.archive_root.unlink()
        settings.archive_root.mkdir()
        await cli.send(wid, "retry-step", RetryStep(by="ops", problem="archive"))
        st = await wait_until(handle, lambda s: s.step("farewell").state == "done")
        assert st.archive is not None and (Path(st.archive.location) / "MANIFEST.json").exists()
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()


async def test_scim_429_and_5xx_are_retried_and_never_become_problems(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    overloaded = FaultProxy(scim.port, fail_first=1, status="429 Too Many Requests")
    down = FaultProxy(scim.port, fail_first=2, status="503 Service Unavailable")
    urls = {"crm": await overloaded.start(), "wiki": await down.start()}
    flaky = settings.model_copy(update={"scim_systems": {
        name: system.model_copy(update={"base_url": f"http://127.0.0.1:{urls[name]}/{name}/v2"})
        for name, system in settings.scim_systems.items()}})
    cf = client_file(scim=scim, end_in_days=None, reason="termination",
                     termination={"cause": "Breach"})
    try:
        async with new_worker(dev_env.client, flaky):
            cli = cli_for(dev_env, settings)
            wid = await cli.start(cf)
            handle = dev_env.client.get_workflow_handle(wid)
            st = await wait_until(handle, lambda s: s.step("access-revocation").state == "done",
                                  timeout=60)
            assert (overloaded.failed, down.failed) == (1, 2), "each error was answered"
            assert st.problems == [], "transient faults are retried, not handed to ops"
            assert st.step("access-revocation").detail == "3 account(s) on 2 system(s) revoked"
            assert cf.systems[1].users[0] not in scim.users("wiki")
            await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
            await handle.result()
    finally:
        overloaded.close()
        down.close()


async def test_a_notice_refused_for_one_recipient_reaches_the_other_and_says_so(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    cf = client_file(scim=scim, end_in_days=10)  # short notice: sent at once
    mail.refuse.add(cf.contacts.billing.email)
    cli = cli_for(dev_env, settings)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, lambda s: s.step("notice").state == "done")
        assert [m.recipients for m in mail.messages] == [[cf.contacts.primary.email]]
        assert [(i.action, i.why) for i in st.ignored] == [
            ("email notice", f"not delivered to {cf.contacts.billing.email}")]
        assert st.emails[0].refused == [cf.contacts.billing.email]
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()
