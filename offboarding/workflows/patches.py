"""Workflow changes that alter commands, made behind ``workflow.patched()``: an offboarding
started before a change replays its history the old way, one started after takes the new.
Each id is stored in histories (a marker event), so it never changes; a patch is removed
(keeping only the new branch) once no offboarding started before it is still running.
Oldest first; tests/histories/ holds a history from each side of each."""

from __future__ import annotations

HANDOVER_INVITE = "handover-invite-email"
"""Knowledge transfer also invites the client to a handover session (when the client file
lists documents): ``stages/closing.py``."""

PUBLISH_ON_CHANGE = "publish-search-attributes-on-change"
"""An upsert carries only the attributes that changed: ``visibility.py``."""

APPROVAL_LINKS = "approval-links"
"""Approvers asked one by one, each with their own signed link: ``asking.py``."""

RUN_RECORDS = "run-records"
"""The run's records (outbox, exports, archive) and its links are its own, named by the
run id: the same client offboarded again used to reuse the earlier run's sent mail,
export and archive."""

CANCEL_ENDS_EXPORTS = "cancel-ends-exports"
"""A cancel deletes the export packages made so far, and our copy of the client's data
too if its retention was already counting: a cancelled offboarding used to keep both
forever, and the steward's link kept downloading the export."""

CANCEL_STOPS_FAREWELL = "cancel-stops-farewell"
"""A cancel that arrives while the archive is written stops the offboarding before the
farewell: the client used to get a farewell after ops had cancelled. Asked only when a
cancel is pending there, so no other history meets it."""
