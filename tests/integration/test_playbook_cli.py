"""``start --playbook`` against the dev server: the offboarding carries the playbook, the
OffboardingPlaybook search attribute finds it by ``name@hash``, ``status`` shows the label,
and its first message (the notice, given a short notice period) is the playbook's own,
from its sender name, with its reply-to."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.models import search_attributes as sa
from offboarding.playbooks import load_playbook
from tests.conftest import EXAMPLES
from tests.helpers import eventually
from tests.integration.test_cli import cli, worker, write_client  # noqa: F401 (fixture)

LEGAL = EXAMPLES / "playbooks" / "legal-and-hardware.yaml"


async def test_an_offboarding_started_with_a_playbook_is_found_by_its_label(
        dev_env: WorkflowEnvironment, worker: None,  # noqa: F811
        scim: ScimServer, tmp_path: Path, smtp: tuple[int, MailCapture]) -> None:
    label = load_playbook(LEGAL).label
    path = write_client(tmp_path, scim)  # ends in 32 (fast) days: the notice is soon due
    code, out = await cli(dev_env, "--json", "start", "--client-file", str(path),
                          "--playbook", str(LEGAL))
    assert code == 0, out
    wid = json.loads(out)["workflow_id"]
    assert json.loads(out)["playbook"] == label
    handle = dev_env.client.get_workflow_handle(wid)
    assert (await handle.describe()).typed_search_attributes.get(sa.PLAYBOOK) == label

    async def found() -> list[str]:
        query = f'{sa.PLAYBOOK.name} = "{label}" AND WorkflowId = "{wid}"'
        return [wf.id async for wf in dev_env.client.list_workflows(query)]

    assert await eventually(found, what=f"{wid} listed by its playbook") == [wid]
    code, out = await cli(dev_env, "status", wid)
    assert code == 0 and f"playbook: {label}" in out, out

    _, mail = smtp

    async def notice() -> list[bytes]:
        return [m.raw for m in mail.messages if m.message["X-Offboarding-Workflow"] == wid
                and m.subject.startswith("Our contract")]

    [raw] = await eventually(notice, what="the playbook's notice")
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["From"].addresses[0].display_name == "Example Client Services"
    assert received["Reply-To"] == "client-services@example.com"
    await cli(dev_env, "cancel", wid, "--by", "ops", "--reason", "test over")
