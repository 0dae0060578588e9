"""The benchmark's floor worker (bench/floor.py): the activities it serves are the floor's
stand-ins, except those ``--real`` names, which are the worker's own; a name that is not
an activity, or a real one without the one it reads from, stops it with the reason,
rather than measuring the wrong thing or stalling every offboarding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import floor
from offboarding.activities.registry import build_activities
from offboarding.config import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, state_dir=tmp_path / "state", metrics_address="",
                    client_data_root=tmp_path, transfer_root=tmp_path / "transfer",
                    archive_root=tmp_path / "archive")


def served(fns: list[Callable[..., Any]]) -> dict[str, str]:
    """Activity name -> the module that serves it."""
    return {floor.name_of(fn): fn.__module__ for fn in fns}


def test_the_floor_serves_every_activity_the_worker_does(tmp_path: Path) -> None:
    names = served(floor.activities(settings(tmp_path)))
    assert set(names) == {floor.name_of(fn) for fn in build_activities(settings(tmp_path))}
    assert set(names.values()) == {"bench.floor"}


def test_real_names_are_the_workers_own(tmp_path: Path) -> None:
    names = served(floor.activities(settings(tmp_path), ["revoke_access"]))
    assert names["revoke_access"] == "offboarding.activities.access"
    assert {m for n, m in names.items() if n != "revoke_access"} == {"bench.floor"}


def test_an_unknown_name_stops_it_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no activity named \['send_mail'\].*'send_email'"):
        floor.activities(settings(tmp_path), ["send_mail"])


def test_real_mail_without_the_real_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="send_email needs archive_offboarding real too"):
        floor.activities(settings(tmp_path), ["send_email"])
    names = served(floor.activities(settings(tmp_path),
                                    ["send_email", "archive_offboarding"]))
    assert names["send_email"] == "offboarding.activities.email"
