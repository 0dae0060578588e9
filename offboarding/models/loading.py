"""Reading a client file (YAML or JSON) into the contract, with errors a person can fix."""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable, Hashable
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from offboarding.models.admission import admission_problems
from offboarding.models.client_file import ClientFile
from offboarding.models.text import safe_segment

MAX_BYTES = 500_000
"""A client file travels whole as the workflow input: half a megabyte keeps it, and what
the workflow derives from it, well below Temporal's 2 MB payload limit."""
MAX_DEPTH = 32
"""A client file is five levels deep; ten thousand made ``validate`` print a traceback."""
M = TypeVar("M", bound=BaseModel)


class InputError(Exception):
    """Bad input, explained: one line per problem, naming the field, value and expectation."""


class _Unparseable(Exception):
    """Raised inside the parsers; ``parse_document`` names the file."""


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


def _too_deep(line: int) -> _Unparseable:
    return _Unparseable(f"it nests deeper than {MAX_DEPTH} levels (at line {line}); a client "
                        "file needs five")


def _twice(key: object, first: int, second: int) -> _Unparseable:
    return _Unparseable(f"{key!r} is given twice, on lines {first} and {second}; expected "
                        "each key once (the second would silently replace the first)")


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice (it kept the last: a second
    ``approvers:`` replaced the first) and nesting deeper than MAX_DEPTH
    (its composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _too_deep(event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _twice(key, seen[key], line)
                seen[key] = line
            except TypeError:  # unhashable: the constructor refuses it below
                continue
        return super().construct_mapping(node, deep=deep)


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _key_lines(text: str, start: int, end: int, key: str) -> list[int]:
    """The lines of ``key`` among the keys of the JSON object at ``text[start:end]``."""
    lines, depth = [], 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"\s*(:?)|[{}\[\]]', text[start:end]):
        if token.group() in "{[":
            depth += 1
        elif token.group() in "}]":
            depth -= 1
        elif depth == 1 and token.group(1) and \
                json.loads(token.group().rstrip().removesuffix(":")) == key:
            lines.append(_line(text, start + token.start()))
    return lines


# The standard library's pure-Python parts (typeshed does not declare them).
_PY_SCANNER: Callable[[json.JSONDecoder], Any] = json.scanner.py_make_scanner  # type: ignore[attr-defined]
_ARRAY: Callable[..., tuple[Any, int]] = json.decoder.JSONArray  # type: ignore[attr-defined]
_OBJECT: Callable[..., tuple[Any, int]] = json.decoder.JSONObject  # type: ignore[attr-defined]


class _JsonDecoder(json.JSONDecoder):
    """The standard decoder, refusing a key given twice and nesting deeper than MAX_DEPTH:
    its pure-Python scanner lets objects and arrays be parsed here."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parse_object = self._object
        self.parse_array = self._array
        self.scan_once = _PY_SCANNER(self)

    def _nested(self, text: str, at: int, parse: Callable[[], tuple[Any, int]]
                ) -> tuple[Any, int]:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _too_deep(_line(text, at))
            return parse()
        finally:
            self.depth -= 1

    def _array(self, s_and_end: tuple[str, int], scan_once: Any) -> tuple[Any, int]:
        return self._nested(*s_and_end, lambda: _ARRAY(s_and_end, scan_once))

    def _object(self, s_and_end: tuple[str, int], strict: bool, scan_once: Any,
                object_hook: Any, object_pairs_hook: Any, memo: Any = None) -> tuple[Any, int]:
        text, start = s_and_end
        pairs, end = self._nested(text, start, lambda: _OBJECT(
            s_and_end, strict, scan_once, None, list, memo))
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                first, second, *_ = _key_lines(text, start - 1, end, key)
                raise _twice(key, first, second)
            result[key] = value
        return result, end


def parse_document(text: str, source: str) -> Any:
    try:
        if source.endswith(".json"):
            return _JsonDecoder().decode(text)
        return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader: no arbitrary objects
    except (json.JSONDecodeError, yaml.YAMLError, _Unparseable) as err:
        raise InputError(f"{source} cannot be parsed: {err}") from None
    except ValueError as err:  # an int of more digits than Python converts (4,300)
        raise InputError(f"{source} cannot be parsed: {str(err).partition(';')[0]}; "
                         "expected numbers of a few digits") from None


def load_model(model: type[M], data: Any, source: str) -> M:
    if not isinstance(data, dict):
        raise InputError(f"{source} must hold an object (a mapping of fields), "
                         f"got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise explain(err, source) from None


def own_problems(client: ClientFile) -> list[str]:
    """Rules beside ``admission_problems``: like them, checked when a file may
    start an offboarding, not when a recorded input is decoded."""
    own, problems = client.client_id, []
    for n, document in enumerate(client.documents):  # row 6: as data sets already are
        parts = PurePosixPath(document.path).parts
        if parts[0] != own:
            problems.append(
                f"documents.{n}.path: {document.path!r} is not in the client's own folder; "
                f"documents of {own} live under {own}/ in the documents root")
        elif len(parts) == 1:
            problems.append(f"documents.{n}.path: {document.path!r} is the client's whole "
                            f"folder; expected a file in it ({own}/...)")
    folders: dict[str, int] = {}
    for n, data_set in enumerate(client.data_sets):  # row 9: one folder each in data.zip
        folder = safe_segment(data_set.name)
        first = folders.setdefault(folder.casefold(), n)
        if first != n:
            other = client.data_sets[first].name
            how = (f"both are {folder}/ in data.zip" if safe_segment(other) == folder else
                   f"{safe_segment(other)}/ and {folder}/ in data.zip differ only in case, "
                   "one folder where case is ignored")
            problems.append(
                f"data_sets.{n}.name: {data_set.name!r} is the same folder in the export as "
                f"data_sets.{first}.name {other!r} ({how}); expected names that differ in "
                "their letters or digits")
    return problems + _repeated(client)


def _repeated(client: ClientFile) -> list[str]:
    """The same thing listed twice: a document mailed twice, data exported (and deleted)
    twice, an approver asked twice."""
    problems = []
    documents: dict[str, int] = {}
    for n, document in enumerate(client.documents):
        first = documents.setdefault(document.path, n)
        if first != n:
            problems.append(f"documents.{n}.path: {document.path!r} is listed already as "
                            f"documents.{first}.path; expected each document once")
    paths = [PurePosixPath(d.path) for d in client.data_sets]
    for n, path in enumerate(paths):
        for m, other in enumerate(paths[:n]):
            if path == other or path.is_relative_to(other) or other.is_relative_to(path):
                how = "is" if path == other else "overlaps"
                problems.append(f"data_sets.{n}.path: {str(path)!r} {how} data_sets.{m}.path "
                                f"{str(other)!r}; expected data sets that do not overlap")
                break
    for role in ("finance", "data_verification"):
        seen: dict[str, int] = {}
        for n, address in enumerate(getattr(client.approvers, role)):
            first = seen.setdefault(address.casefold(), n)
            if first != n:
                problems.append(f"approvers.{role}.{n}: {address!r} is listed already as "
                                f"approvers.{role}.{first}; expected each approver once")
    return problems


def load_client_file(path: Path, today: date | None = None) -> ClientFile:
    """A client file that may start an offboarding: well-formed, and meeting the admission
    rules (``models/admission.py``, ``own_problems``) as of ``today``."""
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
    problems = admission_problems(client, today or date.today()) + own_problems(client)
    if problems:
        raise InputError(f"{path} is not valid:\n" + "\n".join(f"  {p}" for p in problems))
    return client
