"""Activities on their own (``ActivityEnvironment``), against the real SMTP and SCIM servers
and real directories."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from devtools import mailcapture
from devtools.mailcapture import MailCapture
from devtools.procs import free_port
from devtools.scim import ScimServer
from offboarding.activities import blocking
from offboarding.activities.access import AccessRevoker
from offboarding.activities.archive import Archiver
from offboarding.activities.blocking import in_thread
from offboarding.activities.email import Mailer
from offboarding.activities.outbox import FileOutbox
from offboarding.config import Settings
from offboarding.models.records import EmailRequest, RevokeRequest
from offboarding.models.stages import StepKey
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file, reply, scim_service_config

CONTEXT = {"contact": {"name": "<script>alert(1)</script> & Co"}, "client_name": "Initech",
           "account_manager": "Client Services"}


async def test_html_is_autoescaped_and_text_is_left_as_written(
    settings: Settings, mail: MailCapture,
) -> None:
    req = EmailRequest(workflow_id="wf-1", key="check-in", template="check_in",
                       to=["a@client.example"], context=CONTEXT)
    await ActivityEnvironment().run(Mailer(settings).send_email, req)
    [msg] = mail.messages
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in msg.html()
    assert "<script>" not in msg.html()
    assert "Dear <script>alert(1)</script> & Co," in msg.text()


async def test_a_retried_send_is_recognised_and_not_sent_twice(
    settings: Settings, mail: MailCapture,
) -> None:
    req = EmailRequest(workflow_id="wf-2", key="farewell", template="check_in",
                       to=["a@client.example"], context=CONTEXT)
    mailer = Mailer(settings)
    first = await ActivityEnvironment().run(mailer.send_email, req)
    again = await ActivityEnvironment().run(mailer.send_email, req)
    assert len(mail.messages) == 1
    assert again.already_sent and again.message_id == first.message_id
    assert mail.messages[0].message_id == "<farewell.wf-2@offboarding.example.com>"


async def test_non_ascii_subjects_and_names_arrive_intact(
    settings: Settings, mail: MailCapture,
) -> None:
    settings = settings.model_copy(update={"mail_from": "Zoë Müller <services@example.com>"})
    req = EmailRequest(workflow_id="wf-utf8", key="knowledge", template="knowledge_transfer",
                       to=["a@client.example"],
                       context={**CONTEXT, "client_name": "Société Générale Ünïcode",
                                "documents": []})
    receipt = await ActivityEnvironment().run(Mailer(settings).send_email, req)
    [msg] = mail.messages
    assert "Société Générale Ünïcode" in msg.subject and receipt.subject == msg.subject
    assert str(msg.message["From"]) == "Zoë Müller <services@example.com>"
    assert msg.message["Date"] is not None


async def test_an_outbox_written_by_an_older_worker_is_still_honoured(
    settings: Settings, mail: MailCapture,
) -> None:
    """Workers before the single-file outbox kept a JSON receipt and an .eml apart; an
    offboarding in flight across the upgrade must neither resend nor lose its mail."""
    folder = settings.outbox_dir / "wf-old"
    folder.mkdir(parents=True)
    (folder / "notice.json").write_text(json.dumps({
        "key": "notice", "message_id": "<notice.wf-old@offboarding.example.com>",
        "to": ["a@client.example"], "subject": "Notice", "sent_at": "2026-01-01T00:00:00Z"}))
    (folder / "notice.eml").write_bytes(b"Subject: Notice\r\n\r\nold body\r\n")
    req = EmailRequest(workflow_id="wf-old", key="notice", template="check_in",
                       to=["a@client.example"], context=CONTEXT)
    again = await ActivityEnvironment().run(Mailer(settings).send_email, req)
    assert again.already_sent and not mail.messages
    req = req.model_copy(update={"key": "farewell"})
    await ActivityEnvironment().run(Mailer(settings).send_email, req)
    kept = FileOutbox(settings.outbox_dir).messages("wf-old")
    assert sorted(kept) == ["farewell.eml", "notice.eml"]
    assert kept["notice.eml"].endswith(b"old body\r\n")
    assert kept["farewell.eml"] == mail.messages[0].raw


async def test_a_refused_recipient_is_a_permanent_error(
    settings: Settings, mail: MailCapture,
) -> None:
    mail.refuse.add("nobody@client.example")
    req = EmailRequest(workflow_id="wf-3", key="notice", template="check_in",
                       to=["nobody@client.example"], context=CONTEXT)
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(Mailer(settings).send_email, req)
    assert err.value.non_retryable and err.value.type == "RecipientRefused"
    assert "nobody@client.example" in str(err.value)
    assert not mail.messages


async def test_accounts_are_revoked_and_one_already_gone_counts_as_revoked(
    settings: Settings, scim: ScimServer,
) -> None:
    scim.add_user("crm", "ann-x1")
    scim.add_user("crm", "bob-x1")
    req = RevokeRequest(workflow_id="wf-4", system="crm", mode="deactivate",
                        users=["ann-x1", "bob-x1", "gone-x1"])
    result = await ActivityEnvironment().run(AccessRevoker(settings).revoke_access, req)
    assert [(a.user, a.result) for a in result.accounts] == [
        ("ann-x1", "deactivated"), ("bob-x1", "deactivated"), ("gone-x1", "already-gone")]
    users = scim.users("crm")
    assert users["ann-x1"]["active"] is False and users["bob-x1"]["active"] is False
    deleted = await ActivityEnvironment().run(
        AccessRevoker(settings).revoke_access,
        RevokeRequest(workflow_id="wf-4", system="crm", mode="delete", users=["ann-x1"]))
    assert deleted.accounts[0].result == "deleted" and "ann-x1" not in scim.users("crm")


async def test_a_quick_revocation_costs_no_heartbeat_and_a_long_one_reports_its_progress(
    settings: Settings, scim: ScimServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each heartbeat is a round trip to Temporal's server: one that ends in milliseconds
    has nothing to report. A long one (here: one that has already run past the threshold,
    which the test sets to nothing) heartbeats before each account, as "n/total"."""
    beats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    users = [f"quick-{n}" for n in range(3)]
    for user in users:
        scim.add_user("crm", user)
    revoker = AccessRevoker(settings)
    req = RevokeRequest(workflow_id="wf-4h", system="crm", mode="deactivate", users=users)
    assert [a.result for a in (await env.run(revoker.revoke_access, req)).accounts] == \
        ["deactivated"] * 3
    assert beats == []
    monkeypatch.setattr(blocking, "BEAT_AFTER", 0.0)
    await env.run(revoker.revoke_access, req.model_copy(update={"workflow_id": "wf-4i"}))
    assert beats == [("1/3",), ("2/3",), ("3/3",)]


ACME = "urn:example:params:scim:schemas:extension:acme:2.0:User"


@pytest.fixture(scope="module")
def plain_scim(scim: ScimServer, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[ScimServer]:
    """A real SCIM server that announces, and keeps to, RFC 7644's minimum: no PATCH, no
    filtering (both answer 501), lists in pages of two; and its users carry an extension
    of its own, as an identity provider's do."""
    folder = tmp_path_factory.mktemp("plain-scim")
    schemas, types = scim.discovery("crm")
    schemas.append({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": ACME,
                    "name": "AcmeUser", "attributes": [{
                        "name": "badge", "type": "string", "multiValued": False,
                        "required": False, "caseExact": False, "mutability": "readWrite",
                        "returned": "default", "uniqueness": "none"}]})
    for kind in types:
        if kind["name"] == "User":
            kind["schemaExtensions"].append({"schema": ACME, "required": False})
    files = {name: folder / f"{name}.json" for name in ("schemas", "types", "config")}
    files["schemas"].write_text(json.dumps(schemas))
    files["types"].write_text(json.dumps(types))
    files["config"].write_text(json.dumps({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": False}, "bulk": {"supported": False},
        "filter": {"supported": False, "maxResults": 2},
        "changePassword": {"supported": False}, "sort": {"supported": False},
        "etag": {"supported": True}}))
    server = ScimServer(free_port(), ["erp"], scim.token, log=folder / "scim.log",
                        config=files["config"], schemas=files["schemas"],
                        resource_types=files["types"])
    yield server
    server.close()


async def test_a_system_without_patch_or_filter_has_its_accounts_found_and_deactivated_anyway(
    settings: Settings, plain_scim: ScimServer,
) -> None:
    for n in range(5):
        plain_scim.add_user("erp", f"keep-{n}")
    plain_scim.add_user("erp", "cat-x1", extra={ACME: {"badge": "B-7"}})  # on the 3rd page
    erp = settings.scim_systems["crm"].model_copy(
        update={"base_url": plain_scim.base_url("erp")})
    revoker = AccessRevoker(settings.model_copy(update={"scim_systems": {"erp": erp}}))
    req = RevokeRequest(workflow_id="wf-4b", system="erp", mode="deactivate",
                        users=["CAT-x1", "gone-x1"])
    result = await ActivityEnvironment().run(revoker.revoke_access, req)
    assert [(a.user, a.result) for a in result.accounts] == [
        ("CAT-x1", "deactivated"), ("gone-x1", "already-gone")]
    users = plain_scim.users("erp")
    assert [u for u, found in users.items() if found["active"] is False] == ["cat-x1"]
    assert users["cat-x1"][ACME] == {"badge": "B-7"}, "the PUT kept the system's own data"


async def test_a_base_url_that_is_not_scim_is_a_permanent_error_naming_the_system(
    settings: Settings, tmp_path: Path,
) -> None:
    """A web server that is not SCIM (here Python's own, serving an empty folder): the
    discovery answers 404 with an HTML page, which says what to fix instead of retrying."""
    web = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler,
                                                        directory=str(tmp_path)))
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        wrong = settings.scim_systems["crm"].model_copy(
            update={"base_url": f"http://127.0.0.1:{web.server_port}/scim/v2"})
        revoker = AccessRevoker(settings.model_copy(update={"scim_systems": {"crm": wrong}}))
        req = RevokeRequest(workflow_id="wf-5b", system="crm", mode="delete", users=["x"])
        with pytest.raises(ApplicationError) as err:
            await ActivityEnvironment().run(revoker.revoke_access, req)
    finally:
        web.shutdown()
    assert err.value.non_retryable and err.value.type == "ScimRejected"
    assert err.value.message.startswith("crm: looking up x failed with 404: ")


class SameFirstPage(SimpleHTTPRequestHandler):
    """A SCIM server that cannot filter and ignores ``startIndex``: every page of /Users is
    the first one. (scim2-server pages correctly, so this one is written here.)"""

    def do_GET(self) -> None:
        if self.path.startswith("/ServiceProviderConfig"):
            body = scim_service_config(patch=True, filter_=False, max_results=2)
        elif self.path.startswith("/Users/"):  # no account has that id
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "404", "detail": "not found"}
        else:
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": 6, "itemsPerPage": 2, "startIndex": 1, "Resources": [
                        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                         "id": f"id-{n}", "userName": f"first-{n}"} for n in (1, 2)]}
        reply(self, int(body.get("status", 200)), "application/scim+json",
              json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


async def test_a_system_that_repeats_its_first_page_is_not_taken_for_an_account_gone(
    settings: Settings,
) -> None:
    """Listing pages until totalResults would see six accounts without ever seeing the
    fifth, and report the one sought as already gone: revoked, falsely."""
    web = ThreadingHTTPServer(("127.0.0.1", 0), SameFirstPage)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        odd = settings.scim_systems["crm"].model_copy(
            update={"base_url": f"http://127.0.0.1:{web.server_port}"})
        revoker = AccessRevoker(settings.model_copy(update={"scim_systems": {"odd": odd}}))
        req = RevokeRequest(workflow_id="wf-5c", system="odd", mode="deactivate",
                            users=["fifth"])
        with pytest.raises(ApplicationError) as err:
            await ActivityEnvironment().run(revoker.revoke_access, req)
    finally:
        web.shutdown()
    assert err.value.non_retryable and err.value.type == "ScimRejected"
    assert err.value.message == (
        "odd: looking up fifth: page 2 of the accounts repeats accounts already listed "
        "(the system ignores startIndex); cannot tell whether fifth exists")


async def test_a_wrong_scim_token_is_a_permanent_error_naming_the_system(
    settings: Settings, scim: ScimServer,
) -> None:
    bad = settings.model_copy(update={"scim_systems": {
        "crm": settings.scim_systems["crm"].model_copy(update={"token": None})}})
    req = RevokeRequest(workflow_id="wf-5", system="crm", mode="delete", users=["x"])
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(AccessRevoker(bad).revoke_access, req)
    assert err.value.non_retryable and err.value.type == "ScimAccessDenied"
    assert err.value.message == "crm: looking up x was refused (401); check the SCIM token"
    assert "test-scim-token" not in str(err.value)


async def test_an_archive_is_written_once_and_never_overwritten(settings: Settings) -> None:
    cf = client_file()
    state = OffboardingState("offboarding-archived", cf)
    state.mark(StepKey.ARCHIVE, "active", datetime(2027, 1, 1, tzinfo=UTC))
    archiver = Archiver(settings)
    receipt = await ActivityEnvironment().run(archiver.archive_offboarding, state.status)
    manifest = json.loads((settings.archive_root / receipt.report).parent.joinpath(
        "MANIFEST.json").read_text())
    assert set(manifest) == {"record.json", "closure-report.html"}
    # A retry of the same archive answers with what is there...
    again = await ActivityEnvironment().run(archiver.archive_offboarding, state.status)
    assert again.manifest_sha256 == receipt.manifest_sha256
    # ...but a different record for the same offboarding is refused, and nothing changes.
    state.status.contract_end = date(2030, 1, 1)
    with pytest.raises(ApplicationError, match="already exists with other contents"):
        await ActivityEnvironment().run(archiver.archive_offboarding, state.status)
    record = (settings.archive_root / receipt.report).parent / "record.json"
    assert json.loads(record.read_text())["contract_end"] == cf.contract.end_date.isoformat()


async def test_a_pooled_connection_the_server_dropped_is_replaced(settings: Settings) -> None:
    port = free_port()
    own = settings.model_copy(update={"smtp_port": port})
    mailer = Mailer(own)
    servers = []
    # The server restarts between the two sends: the idle pooled connection is then dead.
    for key in ("one", "two"):
        controller, capture = mailcapture.start("127.0.0.1", port)
        servers.append(capture)
        try:
            await ActivityEnvironment().run(mailer.send_email, EmailRequest(
                workflow_id="wf-6", key=key, template="check_in", to=["a@client.example"],
                context=CONTEXT))
        finally:
            controller.stop()
    first, second = servers
    assert [m.message_id for m in first.messages] == ["<one.wf-6@offboarding.example.com>"]
    assert [m.message_id for m in second.messages] == ["<two.wf-6@offboarding.example.com>"]


async def test_a_partly_refused_message_reaches_the_others_and_reports_the_rest(
    settings: Settings, mail: MailCapture,
) -> None:
    mail.refuse.add("gone@client.example")
    req = EmailRequest(workflow_id="wf-7", key="notice", template="check_in",
                       to=["a@client.example"], cc=["gone@client.example"], context=CONTEXT)
    receipt = await ActivityEnvironment().run(Mailer(settings).send_email, req)
    [msg] = mail.messages
    assert msg.recipients == ["a@client.example"]
    assert receipt.to == ["a@client.example"] and receipt.refused == ["gone@client.example"]


async def test_blocking_work_in_a_thread_keeps_the_activity_heartbeating() -> None:
    """What lets a worker killed mid-archive be noticed within the heartbeat timeout."""
    beats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    def blocking() -> str:
        time.sleep(0.5)
        return "done"

    async def slow() -> str:
        return await in_thread(blocking, detail="writing", every=0.1)

    assert await env.run(slow) == "done"
    assert len(beats) >= 3 and beats[0] == ("writing",)


@pytest.mark.parametrize("name", ["Initech\x0bReply-To : attacker@evil.example",
                                  "Initech\u2028Bcc: victim@example.com", "Initech\x85X"])
async def test_a_header_that_would_split_is_a_permanent_error_and_nothing_is_sent(
    settings: Settings, mail: MailCapture, name: str,
) -> None:
    """Issue 10, row 7: a workflow started without the CLI's validation still cannot
    inject a header; the send fails for good (ops see a problem) instead of retrying."""
    req = EmailRequest(workflow_id="wf-7", key="handover-invite", template="handover_invite",
                       to=["a@client.example"], context={**CONTEXT, "client_name": name,
                                                         "documents": []})
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(Mailer(settings).send_email, req)
    assert err.value.non_retryable and err.value.type == "MessageUnbuildable"
    assert "Subject" in err.value.message and "U+" in err.value.message
    assert mail.messages == []
