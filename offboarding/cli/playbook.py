"""The CLI and playbooks: which one ``start`` uses, and the ``playbook validate`` and
``playbook show`` verbs, which read a file and start nothing (no Temporal needed).

``start --playbook FILE`` names one; without the flag, ``OFFBOARDING_PLAYBOOK`` does;
``--playbook none`` starts without one whatever the settings say. It is read and checked
before anything starts, and its errors are listed like a client file's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from offboarding.cli.render import Renderer, counted
from offboarding.config import Settings
from offboarding.models.loading import InputError
from offboarding.models.playbook import Playbook
from offboarding.playbooks import load_playbook, outline

NONE = "none"


def chosen(flag: str | None, settings: Settings) -> Playbook | None:
    """The playbook ``start`` runs by: the flag's, else the settings', else none."""
    if flag is not None:
        return None if flag.strip().lower() == NONE else load_playbook(Path(flag))
    if settings.playbook is None:
        return None
    try:
        return load_playbook(settings.playbook)
    except InputError as err:
        raise InputError(f"OFFBOARDING_PLAYBOOK: {err} (start --playbook none starts "
                         "without it)") from None


def add_arguments(sub: Any, common: argparse.ArgumentParser) -> None:
    """``playbook validate FILE`` and ``playbook show FILE``; ``common`` brings the global
    flags (``--json``) after the verb too."""
    p = sub.add_parser("playbook", parents=[common],
                       help="check a playbook, or show the course it gives an offboarding")
    what = p.add_subparsers(dest="playbook_command", required=True, metavar="ACTION")
    for name, help_text in (("validate", "check a playbook file and its templates"),
                            ("show", "each path's steps with the playbook's gates and tasks, "
                                     "its mail and its timings")):
        action = what.add_parser(name, parents=[common], help=help_text)
        action.add_argument("playbook_file", type=Path, metavar="FILE")


def run(args: argparse.Namespace, out: Renderer) -> int:
    playbook = load_playbook(args.playbook_file)
    source = str(args.playbook_file)
    if args.playbook_command == "show":
        out.playbook(source, playbook, outline(playbook))
        return 0
    out.emit({"valid": True, "file": source, "playbook": playbook.label,
              "gates": len(playbook.gates), "tasks": len(playbook.tasks),
              "templates": sorted(playbook.templates)},
             lambda: out.line(f"{source}: ok, {counted(playbook)}"))
    return 0
