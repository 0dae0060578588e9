"""A company's playbook (``models/playbook.py``) read from its YAML file, checked and
resolved before anything starts, by the CLI (``start --playbook``, ``playbook validate``
and ``show``). Workflow code never reads a playbook file: an offboarding carries the
resolved ``Playbook`` in its input, so it keeps the rules and words it started with.

- ``reading.load_playbook(path)``: the file, checked whole, as a ``Playbook``;
- ``timings.apply_timings(playbook, client, timings)``: its timings as defaults at start;
- ``outline.outline(playbook)``: each path's steps with its gates and tasks in place.
"""

from __future__ import annotations

from offboarding.playbooks.outline import Row, outline
from offboarding.playbooks.reading import MAX_PLAYBOOK_BYTES, MAX_RESOLVED_BYTES, load_playbook
from offboarding.playbooks.timings import apply_timings

__all__ = ["MAX_PLAYBOOK_BYTES", "MAX_RESOLVED_BYTES", "Row", "apply_timings", "load_playbook",
           "outline"]
