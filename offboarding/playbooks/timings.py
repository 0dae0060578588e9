"""A playbook's timings are the company's defaults: merged into what an offboarding starts
with wherever nobody said otherwise. The worker's settings (``OFFBOARDING_TIMINGS__*``,
passed by the CLI) win over the playbook, and so does a client file's own value: only the
fields they did not set (pydantic's ``model_fields_set``) take the playbook's."""

from __future__ import annotations

from typing import Any

from offboarding.models.client_file import ClientFile
from offboarding.models.playbook import Playbook
from offboarding.models.status import Timings

CLIENT_FIELDS = ("retention_days", "follow_up_days")
"""Playbook timings that are the client file's (besides the contract's ``notice_days``)."""


def apply_timings(playbook: Playbook | None, client: ClientFile,
                  timings: Timings) -> tuple[ClientFile, Timings]:
    """``client`` and ``timings`` with the playbook's timings where neither set its own.
    The playbook's values are bounded as the fields they fill (``PlaybookTimings``), so the
    copies need no second validation."""
    if playbook is None:
        return client, timings
    given = playbook.timings.model_dump(exclude_none=True)
    own = {k: v for k, v in given.items()
           if k in Timings.model_fields and k not in timings.model_fields_set}
    merged_timings = timings.model_copy(update=own) if own else timings
    update: dict[str, Any] = {k: given[k] for k in CLIENT_FIELDS
                              if k in given and k not in client.model_fields_set}
    contract = client.contract
    if "notice_days" in given and "notice_days" not in contract.model_fields_set:
        update["contract"] = contract.model_copy(update={"notice_days": given["notice_days"]})
    return (client.model_copy(update=update) if update else client), merged_timings
