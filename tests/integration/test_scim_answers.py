"""What a SCIM system answers to the change that deactivates an account (issue 24).

The account counts as deactivated on the system's word: its answer to the PATCH, which
names an attribute so that the system must answer with the account (RFC 7644 §3.5.2; no
second request), else the account read back. A system whose answer still shows the
account active is read again, and an account still active then is never reported revoked.
scim2-server keeps to the RFC, so the other answers come from a system written here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from devtools.scim import ScimServer
from offboarding.activities.access import AccessRevoker
from offboarding.config import Settings as WorkerSettings
from offboarding.models.records import RevokeRequest
from tests.helpers import reply, scim_service_config

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


class Answers(BaseHTTPRequestHandler):
    """One account, ``ann``; a PATCH answers as ``patch_answer`` says and changes the
    account only when ``patch_applies``. Every request is recorded."""

    patch_answer: ClassVar[str] = "still-active"  # or "no-content"
    patch_applies: ClassVar[bool] = False
    active: ClassVar[bool] = True
    seen: ClassVar[list[str]] = []
    answered_as: ClassVar[dict[str, Any] | None] = None
    """What the PATCH's answer says instead of the account as it is, when set."""

    def _account(self) -> dict[str, Any]:
        return {"schemas": [USER], "id": "id-ann", "userName": "ann", "active": self.active}

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path.split('?')[0]}")
        if self.path.startswith("/ServiceProviderConfig"):
            body = scim_service_config(patch=True, filter_=True, max_results=10)
        elif self.path.startswith("/Users/"):
            body = self._account()
        else:
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": 1, "itemsPerPage": 1, "startIndex": 1,
                    "Resources": [self._account()]}
        reply(self, 200, "application/scim+json", json.dumps(body).encode())

    def do_PATCH(self) -> None:
        self.seen.append(f"PATCH {self.path.split('?')[0]}")
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.patch_applies:
            type(self).active = False
        if self.patch_answer == "no-content":
            self.send_response(204)
            self.end_headers()
        else:
            answer = {**self._account(), **(self.answered_as or {})}
            reply(self, 200, "application/scim+json", json.dumps(answer).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def system(settings: WorkerSettings) -> Iterator[tuple[AccessRevoker, type[Answers]]]:
    handler = type("ThisTest", (Answers,), {"seen": [], "active": True})
    web = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    odd = settings.scim_systems["crm"].model_copy(
        update={"base_url": f"http://127.0.0.1:{web.server_port}"})
    try:
        yield AccessRevoker(settings.model_copy(update={"scim_systems": {"odd": odd}})), handler
    finally:
        web.shutdown()


REQ = RevokeRequest(workflow_id="wf-answers", system="odd", mode="deactivate", users=["ann"])


async def test_an_answer_that_still_shows_the_account_active_is_read_again_and_not_believed(
    system: tuple[AccessRevoker, type[Answers]],
) -> None:
    revoker, handler = system
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(revoker.revoke_access, REQ)
    assert err.value.type == "ScimNotRevoked"
    assert err.value.message == "odd: ann is still active after the change"
    assert handler.seen[-2:] == ["PATCH /Users/id-ann", "GET /Users/id-ann"]


@pytest.mark.parametrize("applies", [True, False], ids=["deactivated", "left-active"])
async def test_an_answer_without_the_account_has_it_read_back(
    system: tuple[AccessRevoker, type[Answers]], applies: bool,
) -> None:
    revoker, handler = system
    handler.patch_answer, handler.patch_applies = "no-content", applies
    if applies:
        result = await ActivityEnvironment().run(revoker.revoke_access, REQ)
        assert [(a.user, a.result) for a in result.accounts] == [("ann", "deactivated")]
    else:
        with pytest.raises(ApplicationError, match="still active after the change"):
            await ActivityEnvironment().run(revoker.revoke_access, REQ)
    assert handler.seen[-2:] == ["PATCH /Users/id-ann", "GET /Users/id-ann"]


async def test_scim2_server_answers_with_the_account_so_it_is_not_read_again(
    settings: WorkerSettings, scim: ScimServer,
) -> None:
    scim.add_user("crm", "dee-x9")
    req = RevokeRequest(workflow_id="wf-answers", system="crm", mode="deactivate",
                        users=["dee-x9"])
    result = await ActivityEnvironment().run(AccessRevoker(settings).revoke_access, req)
    assert [(a.user, a.result) for a in result.accounts] == [("dee-x9", "deactivated")]
    assert scim.users("crm")["dee-x9"]["active"] is False
    assert scim.log is not None
    scim_id = result.accounts[0].scim_id
    asked = [line.split('"')[1] for line in scim.log.read_text().splitlines()
             if f"/Users/{scim_id}" in line]
    assert asked == [f"PATCH /crm/v2/Users/{scim_id}?attributes=active HTTP/1.1"], asked


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(answer="still-active", applies=False, said={"id": "id-other", "active": False})
@given(answer=st.sampled_from(["still-active", "no-content"]), applies=st.booleans(),
       said=st.fixed_dictionaries({}, optional={
           "id": st.sampled_from(["id-ann", "id-other", ""]),
           "userName": st.sampled_from(["ann", "bob"]),
           "active": st.sampled_from([True, False, None])}))
async def test_whatever_the_answer_says_the_account_counts_as_revoked_only_when_it_is(
    system: tuple[AccessRevoker, type[Answers]], answer: str, applies: bool,
    said: dict[str, Any],
) -> None:
    """Answers a careless or hostile system might give: another account, no id, no
    ``active``, any of them inactive while the account itself stays active. Deactivated is
    reported only when the system holds the account inactive, or when its answer names
    this very account as inactive (its own word on it, as a read would be)."""
    revoker, handler = system
    handler.patch_answer, handler.patch_applies, handler.answered_as = answer, applies, said
    handler.active = True
    try:
        result = await ActivityEnvironment().run(revoker.revoke_access, REQ)
    except ApplicationError as err:
        assert handler.active, "refused although the account is inactive"
        assert err.type in ("ScimNotRevoked", "ScimRejected"), err
        return
    assert [(a.user, a.result) for a in result.accounts] == [("ann", "deactivated")]
    its_word = answer != "no-content" and said.get("id", "id-ann") == "id-ann" \
        and said.get("active", handler.active) is False
    assert handler.active is False or its_word, f"reported deactivated after {said}"


async def test_a_systems_requests_share_one_connection_as_with_a_production_endpoint(
    settings: WorkerSettings, scim: ScimServer,
) -> None:
    """The worker keeps one HTTP client per system, and its requests, across activities,
    go over one connection, which the SCIM stand-in keeps open as a production endpoint
    does (its access log names the client's port)."""
    users = [f"kay-{n}-c4" for n in range(3)]
    ids = [scim.add_user("crm", user) for user in users]
    req = RevokeRequest(workflow_id="wf-one-connection", system="crm", mode="deactivate",
                        users=users)
    revoker = AccessRevoker(settings)
    for _ in range(2):  # two activities on one worker
        result = await ActivityEnvironment().run(revoker.revoke_access, req)
        assert [a.result for a in result.accounts] == ["deactivated"] * 3
    assert not any(scim.users("crm")[u]["active"] for u in users)
    assert scim.log is not None
    lines = [line for line in scim.log.read_text().splitlines()
             if any(f"%22{u}%22" in line or f"/Users/{i}" in line
                    for u, i in zip(users, ids, strict=True))]
    assert len(lines) == 2 * 2 * len(users), lines  # a lookup and a PATCH, twice over
    connections = {line.split(" ")[0] for line in lines}  # host:port
    assert len(connections) == 1 and ":" in connections.pop(), lines
