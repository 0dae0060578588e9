"""Custom search attributes: for *finding* offboardings in the Web UI and `list`.

They are stored unencrypted, so they hold no personal data: ids, codes, dates and flags.
The ``status`` query stays the source of truth; these are eventually consistent.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

CLIENT_ID = SearchAttributeKey.for_keyword("OffboardingClientId")
REASON = SearchAttributeKey.for_keyword("OffboardingReason")
STAGE = SearchAttributeKey.for_keyword("OffboardingStage")
WAITING_FOR = SearchAttributeKey.for_keyword_list("OffboardingWaitingFor")
"""Every wait under way, e.g. ["settlement-approval", "data-verification"]; empty if none."""
WAITING_SINCE = SearchAttributeKey.for_datetime("OffboardingWaitingSince")
CONTRACT_END = SearchAttributeKey.for_datetime("OffboardingContractEnd")
OVERDUE = SearchAttributeKey.for_bool("OffboardingOverdue")
SHORT_NOTICE = SearchAttributeKey.for_bool("OffboardingShortNotice")
PLAYBOOK = SearchAttributeKey.for_keyword("OffboardingPlaybook")
"""``name@hash`` of the playbook it started with (``models/playbook.Playbook.label``); set
at start, only when there is one: a playbook's name and hash, never a person's."""

ALL: list[SearchAttributeKey[Any]] = [
    CLIENT_ID, REASON, STAGE, WAITING_FOR, WAITING_SINCE, CONTRACT_END, OVERDUE, SHORT_NOTICE,
    PLAYBOOK,
]


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    kinds = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList", "DATETIME": "Datetime",
             "BOOL": "Bool"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
