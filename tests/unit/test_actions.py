"""Every human action against every stage, without a server: the rules (workflows/rules.py)
decide; the table here is what ops and approvers are told in the README. And the one
table of actions (models/messages.py) gives the workflow its handlers and the CLI its verbs."""

from __future__ import annotations

import argparse
import typing
from datetime import UTC, date, datetime, timedelta

import pytest

from offboarding.cli.main import build_parser
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import (
    ACTIONS,
    Ack,
    ApproveGate,
    ApproveSettlement,
    Cancel,
    CompleteTask,
    DisputeSettlement,
    ExtendNotice,
    FixContact,
    MeetingHeld,
    Message,
    RecordFeedback,
    RejectData,
    RejectGate,
    Renew,
    RetryStep,
    SkipStep,
    TerminateEarly,
    VerifyData,
)
from offboarding.models.records import DataPackage
from offboarding.models.settlement import compute_statement
from offboarding.models.stages import Stage, Wait
from offboarding.workflows.offboarding import ClientOffboarding
from offboarding.workflows.rules import RULES, Rejected, apply, validate
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
CHECKSUM = "ab" * 32
WAIT_IN = {Stage.NOTICE_PERIOD: Wait.NOTICE_PERIOD, Stage.REVIEW_MEETING: Wait.MEETING,
           Stage.SETTLEMENT: Wait.SETTLEMENT_APPROVAL,
           Stage.DATA_TRANSFER: Wait.DATA_VERIFICATION, Stage.FEEDBACK: Wait.FEEDBACK}
"""What a contract end waits for in each stage (the person's wait, once it has begun)."""
ENDED = (Stage.COMPLETED, Stage.RENEWED, Stage.CANCELLED)
EVERY_LIVE_STAGE = tuple(s for s in Stage if s not in (Stage.STARTING, *ENDED))
BEFORE_NOTICE_ENDS = (Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD)
ACCEPTED_IN: dict[str, tuple[Stage, ...]] = {
    "approve-settlement": (Stage.SETTLEMENT,),
    "dispute-settlement": (Stage.SETTLEMENT,),
    "verify-data": (Stage.DATA_TRANSFER,),
    "reject-data": (Stage.DATA_TRANSFER,),
    "complete-task": EVERY_LIVE_STAGE,
    "meeting-held": (Stage.NOTICE_PERIOD, Stage.REVIEW_MEETING),
    "record-feedback": (Stage.FEEDBACK,),
    "renew": BEFORE_NOTICE_ENDS,
    "terminate-early": (*BEFORE_NOTICE_ENDS, Stage.REVIEW_MEETING),
    "extend-notice": BEFORE_NOTICE_ENDS,
    "cancel": EVERY_LIVE_STAGE,
    "fix-contact": EVERY_LIVE_STAGE,
    "approve-gate": (),  # no playbook gate here; tests/unit/test_gate_rules.py has them
    "reject-gate": (),
    "retry-step": (),  # no problem is open in this table; tests/unit/test_rules.py has them
    "skip-step": (),
}
"""A contract end: where each action is accepted. Ended offboardings accept nothing."""


def _in_stage(cf: ClientFile, stage: Stage) -> OffboardingState:
    s = OffboardingState("offboarding-x", cf)
    s.status.stage = stage
    if stage in WAIT_IN:
        s.start_wait(WAIT_IN[stage], NOW, None)
    s.add_statement(compute_statement(cf.account, version=1, issued=date(2026, 11, 1),
                                      adjustments=[]))
    s.status.data_packages.append(DataPackage(attempt=1, location="export-1", files=1,
                                              bytes=1, manifest_sha256=CHECKSUM))
    if stage in ENDED:
        s.status.outcome = stage.value  # type: ignore[assignment]
    return s


def _message(name: str, cf: ClientFile, s: OffboardingState) -> Message:
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    statement = s.status.statements[-1].short_hash
    later = s.status.contract_end + timedelta(days=30)
    messages: dict[str, Message] = {
        "approve-settlement": ApproveSettlement(by=finance, statement_hash=statement),
        "dispute-settlement": DisputeSettlement(by=finance, statement_hash=statement,
                                                reason="fee"),
        "verify-data": VerifyData(by=steward, checksum=CHECKSUM),
        "reject-data": RejectData(by=steward, reason="incomplete"),
        "complete-task": CompleteTask(by="ops", task="terms-met"),
        "approve-gate": ApproveGate(by=finance, gate="legal-sign-off", document=CHECKSUM),
        "reject-gate": RejectGate(by=finance, gate="legal-sign-off", document=CHECKSUM,
                                  reason="no"),
        "meeting-held": MeetingHeld(by="ops"),
        "record-feedback": RecordFeedback(by="ops", nps=9),
        "renew": Renew(by="ops"),
        "terminate-early": TerminateEarly(by="ops", cause="breach"),
        "extend-notice": ExtendNotice(by="ops", new_end_date=later),
        "cancel": Cancel(by="ops", reason="duplicate"),
        "fix-contact": FixContact(by="ops", role="billing", email="ap@new.example"),
        "retry-step": RetryStep(by="ops", problem="mail-notice"),
        "skip-step": SkipStep(by="ops", problem="mail-notice", reason="gone"),
    }
    return messages[name]


@pytest.fixture(scope="module")
def cf() -> ClientFile:
    return client_file(end_in_days=40)


# "starting" is only what the search attribute says before the first workflow task.
@pytest.mark.parametrize("stage", [s for s in Stage if s is not Stage.STARTING], ids=str)
@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_action_against_every_stage(cf: ClientFile, name: str, stage: Stage) -> None:
    s = _in_stage(cf, stage)
    msg = _message(name, cf, s)
    before = s.status.model_copy(deep=True)
    try:
        validate(s, name, msg, "cli", NOW)
    except Rejected as err:
        assert stage not in ACCEPTED_IN[name], f"{name} refused in {stage}: {err}"
        assert str(err), "a refusal says why"
        assert s.status == before, "a refused message changes nothing"
        return
    assert stage in ACCEPTED_IN[name], f"{name} accepted in {stage}"
    detail = apply(s, name, msg, "cli", NOW)
    assert detail and s.status.decisions[-1].by == msg.by, "who decided is recorded"


def test_every_action_has_a_rule_an_update_and_a_verb() -> None:
    """Each action's update handler and validator, as the class declares them, decode the
    action's own model (the data converter reads these annotations). That the running
    workflow registers them under the action's name, beside the one dynamic signal
    handler that takes every signal, is asked of a running offboarding through the
    public metadata query: tests/workflow/test_handlers.py."""
    assert set(RULES) == set(ACTIONS)
    verbs = {verb for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
             for verb in a.choices}
    for name, action in ACTIONS.items():
        attr = name.replace("-", "_")
        update = getattr(ClientOffboarding, attr)
        validator = getattr(ClientOffboarding, f"{attr}_validator")
        assert typing.get_type_hints(update) == {"msg": action.model, "return": Ack}, name
        assert typing.get_type_hints(validator) == {"msg": action.model,
                                                    "return": type(None)}, name
        assert name in verbs, name
