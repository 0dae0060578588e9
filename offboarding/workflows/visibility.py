"""What the Web UI and ``list`` see of a running offboarding: its search attributes and
its "current details". The ``status`` query stays the source of truth; these follow it.

Since ``patches.PUBLISH_ON_CHANGE`` an upsert carries only the attributes that changed and is
left out when none did (8 of the 21 upserts of a typical offboarding changed nothing),
and the workflow publishes before every wait, so the attributes are fresh whenever it
blocks without each step having to remember. Offboardings started before the change
keep upserting at the same points as before (tests/histories/*.json replay that path).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from offboarding.models import search_attributes as sa
from offboarding.workflows import patches
from offboarding.workflows.state import OffboardingState


class Visibility:
    def __init__(self, state: OffboardingState) -> None:
        self.state = state
        self._published: dict[str, Any] = {}
        self._on_change: bool | None = None

    def _values(self) -> list[tuple[str, Any, SearchAttributeUpdate[Any]]]:
        st = self.state.status
        end = datetime.combine(st.contract_end, time(0), tzinfo=UTC)
        waits = [str(w) for w in st.waits]
        since = st.waiting_since
        return [
            (sa.CLIENT_ID.name, st.client_id, sa.CLIENT_ID.value_set(st.client_id)),
            (sa.REASON.name, st.reason, sa.REASON.value_set(st.reason)),
            (sa.STAGE.name, str(st.stage), sa.STAGE.value_set(str(st.stage))),
            (sa.WAITING_FOR.name, waits, sa.WAITING_FOR.value_set(waits)),
            (sa.WAITING_SINCE.name, since, sa.WAITING_SINCE.value_set(since) if since
             else sa.WAITING_SINCE.value_unset()),
            (sa.CONTRACT_END.name, end, sa.CONTRACT_END.value_set(end)),
            (sa.OVERDUE.name, st.overdue, sa.OVERDUE.value_set(st.overdue)),
            (sa.SHORT_NOTICE.name, st.short_notice, sa.SHORT_NOTICE.value_set(st.short_notice)),
        ]

    def publish(self) -> None:
        """Bring the search attributes and current details up to date with the status."""
        if self._on_change is None:
            self._on_change = workflow.patched(patches.PUBLISH_ON_CHANGE)
        values = self._values()
        changed = [update for name, value, update in values
                   if not self._on_change or self._published.get(name, _UNSET) != value]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._published = {name: value for name, value, _ in values}
        workflow.set_current_details(self.state.details_markdown())

    def before_wait(self) -> None:
        """Called before the workflow blocks: on the new path a no-op unless something
        changed; on the old path nothing, so old offboardings replay command for command."""
        if self._on_change:
            self.publish()


_UNSET = object()
