"""The portal's pages of a playbook's gate and task with generated titles, questions,
labels and notes: every text is escaped, every page answers, and a gate's or task's link
downloads nothing."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from offboarding.models.status import GateRound
from offboarding.security.links import LinkKeys
from tests.unit.test_portal_gates import (
    COUNSEL,
    NOW,
    OWNER,
    ROUND_1,
    STATEMENT,
    TASK,
    WID,
    Temporal,
    _status,
    portal,  # noqa: F401  (a fixture)
)

HOSTILE = st.text(alphabet=st.sampled_from(list("<>&\"'/= ascriptimgonerr()")),
                  min_size=1, max_size=40).map(lambda t: f"<script>{t}</script>{t}")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(HOSTILE, HOSTILE, st.lists(HOSTILE, max_size=3), HOSTILE)
def test_a_gates_or_tasks_page_shows_any_text_escaped_and_downloads_nothing(
        portal: tuple[TestClient, LinkKeys, Temporal], title: str, question: str,  # noqa: F811
        labels: list[str], note: str) -> None:
    client, keys, temporal = portal
    status = _status(GateRound(gate="legal-review", title=title, round=1, document=ROUND_1,
                               bound=STATEMENT.hash, question=question, labels=labels,
                               asked=[COUNSEL], at=NOW))
    status.tasks[0].title, status.tasks[0].note = title, note
    temporal.status_now = status
    for family, document, who in (("legal-review", ROUND_1, COUNSEL), ("task", TASK, OWNER)):
        token = keys.mint(WID, family, document, who, datetime.now(UTC))
        page = client.get(f"/o/{WID}/{token}")
        assert page.status_code == 200, page.text
        assert "<script>" not in page.text
        for text in (title, question, *labels):
            assert text not in page.text or text == html.escape(text)
        for name in ("data.zip", "manifest.json"):
            assert client.get(f"/o/{WID}/{token}/{name}").status_code == 403
