"""A playbook at the desk: ``playbook validate`` and ``show``, and ``start --playbook``:
checked before anything starts, carried in the input, named by a search attribute, its
timings the defaults."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from temporalio.client import Client

from offboarding.cli.main import run_cli
from offboarding.cli.render import Renderer
from offboarding.config import Settings
from offboarding.models import search_attributes as sa
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import load_client_file
from offboarding.models.stages import Stage
from offboarding.models.status import OffboardingInput, OffboardingStatus, Step, Timings
from offboarding.playbooks import apply_timings, load_playbook
from tests.conftest import EXAMPLES

LEGAL = EXAMPLES / "playbooks" / "legal-and-hardware.yaml"


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    monkeypatch.delenv("OFFBOARDING_PLAYBOOK", raising=False)
    monkeypatch.setenv("OFFBOARDING_SCIM_SYSTEMS", json.dumps(
        {name: {"base_url": "http://127.0.0.1:9"} for name in ("crm", "wiki")}))


class _Temporal:
    """Just enough of a Temporal client for ``start``: what it was asked to start."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    async def start_workflow(self, workflow: str, arg: OffboardingInput, **kwargs: Any) -> None:
        self.started.append({"input": arg, **kwargs})


async def cli(*argv: str, temporal: _Temporal | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_cli(list(argv), client=cast(Client, temporal or _Temporal()), out=out)
    return code, out.getvalue()


def bare_client_file(folder: Path) -> Path:
    """The example without the timings a playbook may default."""
    data = yaml.safe_load((EXAMPLES / "contract-end.yaml").read_text())
    for key in ("retention_days", "follow_up_days"):
        del data[key]
    del data["contract"]["notice_days"]
    path = folder / "client.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ----- validate and show ------------------------------------------------------------------

async def test_validate_says_ok_with_the_label_and_counts() -> None:
    label = load_playbook(LEGAL).label
    assert await cli("playbook", "validate", str(LEGAL)) == (
        0, f"{LEGAL}: ok, {label}: 1 gate, 1 task, 1 template\n")


async def test_validate_lists_every_problem_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: acme\ngates:\n  - {id: meeting, title: M, after: nowhere, "
                    "deciders: approvers.finance}\n")
    assert await cli("playbook", "validate", str(path)) == (1, "")
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path} is not valid:\n")
    assert "  gates.0.id: 'meeting' is a reserved name" in err
    assert "  gates.0.after: 'nowhere' is no step or gate of this playbook" in err


async def test_show_places_gates_and_tasks_after_their_steps_on_both_paths() -> None:
    code, out = await cli("playbook", "show", str(LEGAL))
    assert code == 0, out
    contract_end, termination = out.split("\ncontract end:\n")[1].split("\ntermination:\n")
    lines = [line.split()[1] for line in contract_end.splitlines() if line.strip()]
    assert lines[:9] == ["contract-review", "notice", "notice-period", "review-meeting",
                         "settlement", "legal-sign-off", "data-transfer", "access-revocation",
                         "hardware-return"]
    assert "feedback               Feedback (switched off)" in contract_end
    assert "gate legal-sign-off" in contract_end and "decided by legal@example.com" in out
    assert "owner dana.whitfield@example.com; due in 10 days" in out
    order = [line.split()[1] for line in termination.splitlines()[:8]]
    assert order == ["contract-review", "effective-date", "access-revocation",
                     "hardware-return", "settlement", "legal-sign-off", "data-transfer",
                     "knowledge-transfer"]
    assert "side by side with data-transfer" in termination
    assert "templates replaced: notice" in out and "reply-to: client-services@example.com" in out


async def test_show_as_json() -> None:
    code, out = await cli("playbook", "show", str(LEGAL), "--json")
    data = json.loads(out)
    assert code == 0 and data["off"] == ["feedback"] and data["templates"] == ["notice"]
    keys = [row["key"] for row in data["paths"]["termination"]]
    assert keys.index("legal-sign-off") == keys.index("settlement") + 1


# ----- start ------------------------------------------------------------------------------

async def test_start_carries_the_playbook_its_label_and_its_timings(tmp_path: Path) -> None:
    temporal = _Temporal()
    code, out = await cli("--json", "start", "--client-file", str(bare_client_file(tmp_path)),
                          "--playbook", str(LEGAL), temporal=temporal)
    assert code == 0, out
    [started] = temporal.started
    playbook = started["input"].playbook
    assert playbook == load_playbook(LEGAL) and json.loads(out)["playbook"] == playbook.label
    assert started["search_attributes"].get(sa.PLAYBOOK) == playbook.label
    assert started["input"].client.contract.notice_days == 45, "the playbook's default"


async def test_the_settings_name_the_playbook_and_none_starts_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBOARDING_PLAYBOOK", str(LEGAL))
    client = str(EXAMPLES / "contract-end.yaml")
    temporal = _Temporal()
    assert (await cli("start", "--client-file", client, temporal=temporal))[0] == 0
    assert (await cli("start", "--client-file", client, "--playbook", "none",
                      temporal=temporal))[0] == 0
    with_it, without = temporal.started
    assert with_it["input"].playbook.label == load_playbook(LEGAL).label
    assert with_it["input"].client.contract.notice_days == 30, "the client file's own wins"
    assert without["input"].playbook is None
    assert without["search_attributes"].get(sa.PLAYBOOK) is None


async def test_a_wrong_playbook_starts_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: acme\nsteps: {settlement: false}\n")
    temporal = _Temporal()
    client = str(EXAMPLES / "contract-end.yaml")
    assert await cli("start", "--client-file", client, "--playbook", str(bad),
                     temporal=temporal) == (1, "")
    assert "steps.settlement.[key]" in capsys.readouterr().err
    monkeypatch.setenv("OFFBOARDING_PLAYBOOK", str(bad))
    assert await cli("start", "--client-dir", str(EXAMPLES), temporal=temporal) == (1, "")
    assert capsys.readouterr().err.startswith(f"error: OFFBOARDING_PLAYBOOK: {bad} is not valid")
    assert temporal.started == []


def test_the_playbook_timings_fill_only_what_nobody_set(tmp_path: Path) -> None:
    playbook = load_playbook(LEGAL).model_copy(update={"timings": load_playbook(LEGAL).timings
                                                       .model_copy(update={
                                                           "retention_days": 60,
                                                           "settlement_reminder_days": 1.5,
                                                           "data_reminder_days": 2})})
    bare = load_client_file(bare_client_file(tmp_path))
    settings = Settings(_env_file=None, timings={"data_reminder_days": 5})
    client, timings = apply_timings(playbook, bare, settings.timings)
    assert (client.contract.notice_days, client.retention_days, client.follow_up_days) == \
        (45, 60, 90)
    assert (timings.settlement_reminder_days, timings.data_reminder_days) == (1.5, 5)
    assert timings.meeting_deadline_days == Timings().meeting_deadline_days
    own = load_client_file(EXAMPLES / "contract-end.yaml")
    assert apply_timings(playbook, own, Timings())[0].retention_days == own.retention_days
    assert apply_timings(None, own, settings.timings) == (own, settings.timings)
    assert isinstance(client, ClientFile) and client.client_id == bare.client_id


def test_status_names_the_playbook() -> None:
    st = OffboardingStatus(workflow_id="offboarding-acme", client_id="acme", client_name="Acme",
                           reason="contract_end", stage=Stage.SETTLEMENT,
                           contract_end=date(2027, 1, 31),
                           steps=[Step(key="settlement", title="Financial settlement")], tasks=[],
                           playbook="legal-and-hardware@fdf45aaabc93")
    out = io.StringIO()
    Renderer(out, as_json=False).status(st)
    assert "playbook: legal-and-hardware@fdf45aaabc93" in out.getvalue()
