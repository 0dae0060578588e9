"""Client files made from the examples, for the demo, the tests and the benchmark: a new
client id, dates relative to today, the example's data (and, given a documents root, its
documents) copied into the client's own folder (as the admission rules require) and,
given a SCIM server, its accounts created there so they are really revoked."""

from __future__ import annotations

import copy
import functools
import shutil
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from devtools.scim import ScimServer
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import load_client_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_client(example: str = "contract-end", *, tag: str, data_root: Path,
                   documents_root: Path | None = None, end_date: date | None = None,
                   scim: ScimServer | None = None, tag_users: bool = True,
                   **changes: Any) -> ClientFile:
    """The example as client ``<example's id>-<tag>``; its accounts tagged too, unless
    ``tag_users`` is False (the demo reuses the example's own accounts). Without a
    ``documents_root`` its documents stay the example client's (``acme-analytics/...``),
    which ``validate`` refuses for another client id."""
    data = copy.deepcopy(_example(example))
    client_id = data["client_id"] = f"{data['client_id']}-{tag}"
    contract = data["contract"]
    if end_date is not None:
        contract["start_date"] = min(date.fromisoformat(contract["start_date"]),
                                     end_date - timedelta(days=365)).isoformat()
        contract["end_date"] = end_date.isoformat()
        if contract.get("renewal_offer"):
            contract["renewal_offer"]["valid_until"] = None
    for data_set in data["data_sets"]:
        data_set["path"] = _own_copy(EXAMPLES / "client-data", data_root, client_id,
                                     data_set["path"])
    if documents_root is not None:
        for document in data["documents"]:
            document["path"] = _own_copy(EXAMPLES / "documents", documents_root, client_id,
                                         document["path"])
    for system in data["systems"]:
        if tag_users:
            system["users"] = [f"{u}-{tag}" for u in system["users"]]
        if scim is not None:
            for user in system["users"]:
                scim.add_user(system["system"], user)
    data.update(changes)
    return ClientFile.model_validate(data)


@functools.cache
def _example(example: str) -> dict[str, Any]:
    """Read and validated once: the benchmark makes a thousand clients from it."""
    return load_client_file(EXAMPLES / f"{example}.yaml").model_dump(mode="json")


def _own_copy(examples: Path, root: Path, client_id: str, rel: str) -> str:
    """The example's data set or document at ``rel`` under ``examples``, copied into
    ``client_id``'s own folder of ``root``."""
    own = PurePosixPath(client_id, *PurePosixPath(rel).parts[1:])
    source, target = examples / rel, root / own
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
    return str(own)
