"""Reading a client file (YAML or JSON) into the contract, with errors a person can fix."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from offboarding.models.admission import admission_problems
from offboarding.models.client_file import ClientFile

MAX_BYTES = 500_000
"""A client file travels whole as the workflow input: half a megabyte keeps it, and what
the workflow derives from it, well below Temporal's 2 MB payload limit."""
M = TypeVar("M", bound=BaseModel)


class InputError(Exception):
    """Bad input, explained: one line per problem, naming the field, value and expectation."""


def explain(err: ValidationError, source: str) -> InputError:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
        if len(shown) > 80:
            shown = shown[:77] + "..."
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {msg} (got {shown})")
    return InputError(f"{source} is not valid:\n" + "\n".join(lines))


def parse_document(text: str, source: str) -> Any:
    try:
        if source.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{source} cannot be parsed: {err}") from None


def load_model(model: type[M], data: Any, source: str) -> M:
    if not isinstance(data, dict):
        raise InputError(f"{source} must hold an object (a mapping of fields), "
                         f"got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise explain(err, source) from None


def load_client_file(path: Path, today: date | None = None) -> ClientFile:
    """A client file that may start an offboarding: well-formed, and meeting the admission
    rules (``models/admission.py``) as of ``today``."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputError(f"{path} is {size} bytes; a client file may be at most {MAX_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start})") from None
    client = load_model(ClientFile, parse_document(text, str(path)), str(path))
    problems = admission_problems(client, today or date.today())
    if problems:
        raise InputError(f"{path} is not valid:\n" + "\n".join(f"  {p}" for p in problems))
    return client
