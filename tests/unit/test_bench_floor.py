"""The benchmark's floor worker (bench/floor.py): the activities it serves are the floor's
stand-ins, except those ``--real`` names, which are the worker's own; a name that is not
an activity stops it with the names it knows, rather than measuring the wrong thing."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import activity

from bench import floor
from offboarding.config import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, state_dir=tmp_path / "state", metrics_address="",
                    client_data_root=tmp_path, transfer_root=tmp_path / "transfer",
                    archive_root=tmp_path / "archive")


def served(fns: list[object]) -> dict[str, str]:
    """Activity name -> the module that serves it."""
    out = {}
    for fn in fns:
        defn = activity._Definition.from_callable(fn)  # type: ignore[arg-type]
        assert defn is not None and defn.name is not None
        out[defn.name] = getattr(fn, "__module__", "")
    return out


def test_the_floor_serves_every_activity_the_worker_does(tmp_path: Path) -> None:
    names = served(list(floor.activities(settings(tmp_path))))
    assert set(names) == {"send_email", "revoke_access", "export_client_data",
                          "purge_client_data", "archive_offboarding"}
    assert set(names.values()) == {"bench.floor"}


def test_real_names_are_the_workers_own(tmp_path: Path) -> None:
    names = served(list(floor.activities(settings(tmp_path), ["send_email", "revoke_access"])))
    assert names["send_email"] == "offboarding.activities.email"
    assert names["revoke_access"] == "offboarding.activities.access"
    assert names["archive_offboarding"] == "bench.floor"


def test_an_unknown_name_stops_it_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no activity named \['send_mail'\].*'send_email'"):
        floor.activities(settings(tmp_path), ["send_mail"])
