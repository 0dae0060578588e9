"""Where an offboarding is and what it waits for: the values Temporal stores in the
``OffboardingStage`` and ``OffboardingWaitingFor`` search attributes and that ops type
into ``list --stage`` / ``--waiting-for``. StrEnums, so the stored strings never change."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    STARTING = "starting"
    CONTRACT_REVIEW = "contract-review"
    NOTICE = "notice"
    NOTICE_PERIOD = "notice-period"
    REVIEW_MEETING = "review-meeting"
    SETTLEMENT = "settlement"
    DATA_TRANSFER = "data-transfer"
    ACCESS_REVOCATION = "access-revocation"
    KNOWLEDGE_TRANSFER = "knowledge-transfer"
    FEEDBACK = "feedback"
    ARCHIVE = "archive"
    FAREWELL = "farewell"
    KEEP_IN_TOUCH = "keep-in-touch"
    AWAITING_TERMINATION = "awaiting-termination"
    TERMINATION = "termination"
    COMPLETED = "completed"
    RENEWED = "renewed"
    CANCELLED = "cancelled"


class StepKey(StrEnum):
    """The checklist's steps (``status.steps``), by the keys the status and the archived
    records carry: their strings never change."""

    CONTRACT_REVIEW = "contract-review"
    NOTICE = "notice"
    NOTICE_PERIOD = "notice-period"
    REVIEW_MEETING = "review-meeting"
    SETTLEMENT = "settlement"
    DATA_TRANSFER = "data-transfer"
    ACCESS_REVOCATION = "access-revocation"
    KNOWLEDGE_TRANSFER = "knowledge-transfer"
    FEEDBACK = "feedback"
    ARCHIVE = "archive"
    FAREWELL = "farewell"
    DATA_RETENTION = "data-retention"
    KEEP_IN_TOUCH = "keep-in-touch"


class Wait(StrEnum):
    NOTICE_PERIOD = "notice-period"
    MEETING = "meeting"
    SETTLEMENT_APPROVAL = "settlement-approval"
    DATA_VERIFICATION = "data-verification"
    FEEDBACK = "feedback"
    OPS_ACTION = "ops-action"


WHO_ACTS: dict[Wait, str] = {
    Wait.SETTLEMENT_APPROVAL: "finance approver (approve-settlement / dispute-settlement)",
    Wait.DATA_VERIFICATION: "data steward (verify-data / reject-data)",
    Wait.MEETING: "ops (meeting-held)",
    Wait.FEEDBACK: "ops (record-feedback)",
    Wait.NOTICE_PERIOD: "nobody; ops may renew, terminate-early or extend-notice",
    Wait.OPS_ACTION: "ops (retry-step / skip-step / fix-contact)",
}
"""Who a wait is for, as the Web UI's current details and reminders say it."""
