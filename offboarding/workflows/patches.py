"""Workflow changes that alter commands, made behind ``workflow.patched()``: an offboarding
started before a change replays its history the old way, one started after takes the new.
Each id is stored in histories (a marker event), so it never changes; a patch is removed
(keeping only the new branch) once no offboarding started before it is still running.
Older patches live beside the code they guard: ``visibility.PUBLISH_ON_CHANGE``,
``asking.APPROVAL_LINKS``, ``stages.closing.HANDOVER_INVITE``."""

from __future__ import annotations

RUN_RECORDS = "run-records"
"""The run's records (outbox, exports, archive) and its links are its own, named by the
run id: the same client offboarded again used to reuse the earlier run's sent mail,
export and archive (issue 20, row 4)."""

CANCEL_ENDS_EXPORTS = "cancel-ends-exports"
"""A cancel deletes the export packages made so far, and our copy of the client's data
too if its retention was already counting: a cancelled offboarding used to keep both
forever, and the steward's link kept downloading the export (issue 20, row 10)."""
