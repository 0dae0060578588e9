"""One name for the command people type (issue 21): the ``offboarding`` console script,
listed whole in ``--help``. Alerts and hints named ``python starter.py``, a file the
installed package does not have, and ``--help`` left out ``replay-check``."""

from __future__ import annotations

from offboarding.cli.main import build_parser
from offboarding.client import COMMAND
from tests.conftest import ROOT

SHOWN = ("*.py", "*.txt", "*.html")


def test_help_lists_every_verb_replay_check_included() -> None:
    text = build_parser().format_help()
    assert text.startswith(f"usage: {COMMAND} ")
    for verb in ("start", "status", "setup", "replay-check", "approve-settlement", "cancel"):
        assert f"\n    {verb} " in text, verb


def test_nothing_a_deployed_user_is_shown_names_a_checkout_file() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}"
             for pattern in SHOWN for path in (ROOT / "offboarding").rglob(pattern)
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if "python starter.py" in line]
    assert found == []
    templates = (ROOT / "offboarding" / "activities" / "templates" / "ops_alert.txt")
    assert f"{COMMAND} status" in templates.read_text(), "the check reads what people see"
