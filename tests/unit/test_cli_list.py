"""``offboarding list`` as ops read it: every workflow id whole on its line, whatever the
other rows hold, so it can be copied into the next command. A long wait on one row (a
playbook's gates) squeezed the 120 columns and broke every id across two lines."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from offboarding.cli.render import Renderer
from offboarding.models.client_file import CLIENT_ID
from offboarding.models.stages import Stage, Wait

WORD = st.from_regex(r"[a-z][a-z0-9-]{0,60}", fullmatch=True)


@st.composite
def row(draw: st.DrawFn) -> dict[str, Any]:
    waits = draw(st.lists(st.one_of(st.sampled_from([str(w) for w in Wait]),
                                    WORD.map(lambda w: f"gate:{w}")), max_size=4))
    return {"workflow_id": "offboarding-" + draw(st.from_regex(CLIENT_ID, fullmatch=True)),
            "status": draw(st.sampled_from(["RUNNING", "COMPLETED", "TERMINATED"])),
            "reason": draw(st.sampled_from(["contract_end", "termination", None])),
            "stage": draw(st.sampled_from([str(s) for s in Stage])),
            "waiting_for": ", ".join(waits) or None, "overdue": draw(st.booleans()),
            "short_notice": draw(st.booleans()), "age_days": draw(st.integers(0, 4000))}


@settings(max_examples=200, deadline=None)
@given(st.lists(row(), min_size=1, max_size=6, unique_by=lambda r: r["workflow_id"]))
def test_every_workflow_id_and_wait_is_whole_on_its_line(rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    Renderer(out, as_json=False).rows(rows)
    lines = out.getvalue().splitlines()
    for r in rows:
        [line] = [line for line in lines if f" {r['workflow_id']} " in line]
        if r["waiting_for"]:
            assert f" {r['waiting_for']} " in line
    assert lines[-1] == f"{len(rows)} offboarding(s)"
