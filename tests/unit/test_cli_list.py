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


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[]/\\ab =#:", min_size=1, max_size=40).filter(str.strip),
       st.text(alphabet="[]/\\ab =#:", min_size=1, max_size=40).filter(str.strip))
def test_what_visibility_holds_is_printed_literally(waiting: str, stage: str) -> None:
    """Anyone with access to the namespace can start a workflow of this type with search
    attributes of their own: ``[/]`` in one, read as rich markup, stopped ``list`` for
    every operator."""
    rows = [{"workflow_id": "offboarding-x1", "status": "RUNNING", "reason": stage,
             "stage": stage, "waiting_for": waiting, "overdue": True,
             "short_notice": False, "age_days": 1}]
    out = io.StringIO()
    Renderer(out, as_json=False).rows(rows)
    [line] = [line for line in out.getvalue().splitlines() if " offboarding-x1 " in line]
    assert f" {waiting} " in line and f" {stage} " in line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_no_character_reaches_the_terminal_unshown(value: str) -> None:
    """Escape sequences, line breaks and bidi controls in a search attribute are spelt out,
    and the row stays one line."""
    rows = [{"workflow_id": "offboarding-x1", "status": value, "reason": value,
             "stage": value, "waiting_for": value, "overdue": False,
             "short_notice": True, "age_days": 1}]
    out = io.StringIO()
    Renderer(out, as_json=False).rows(rows)
    lines = out.getvalue().splitlines()
    assert all(c.isprintable() for line in lines for c in line)
    assert len(lines) == 6  # three of heading, the row, the bottom, the count
