"""Where a playbook's gates and tasks go, checked before anything starts: every name its
own, every ``after`` a step that runs or a gate of the same file, no gates waiting on
each other in a circle, and nothing after a step the playbook switched off.

The model (``models/playbook.py``) checks each field alone; these rules need the whole
file. The built-in names come from where they are defined (the checklist's step keys and
manual items in ``workflows/state.py``, the reserved names in ``models/gates.py``), so a
new built-in step cannot be shadowed by a playbook written before it.
"""

from __future__ import annotations

from offboarding.models import gates
from offboarding.models.playbook import ANCHORS, GateSpec, PlaybookFile, TaskSpec
from offboarding.models.stages import StepKey
from offboarding.workflows.state import TASKS

BUILT_IN_TASKS = frozenset(key for key, _, _ in TASKS)
BINDS_AFTER = {"statement": ("settlement", "knowledge-transfer"),
               "export": ("data-transfer", "knowledge-transfer")}
"""The steps a gate binding the statement or the export must follow (itself, or through
the gates before it): the only ones that come after that gate's document is final on
both paths (in a termination, access revocation runs first and settlement and data
transfer run side by side)."""


def _taken(name: str) -> str | None:
    """Why a gate id or task key cannot be ``name``, or None."""
    if name in gates.RESERVED:
        return "a reserved name (a built-in gate, wait or link family)"
    if name in frozenset(StepKey):
        return "a built-in step"
    if name in BUILT_IN_TASKS:
        return "a built-in manual item"
    return None


def _names(pf: PlaybookFile) -> list[str]:
    problems: list[str] = []
    first: dict[str, str] = {}
    named = [(f"gates.{n}.id", g.id) for n, g in enumerate(pf.gates)] + \
            [(f"tasks.{n}.key", t.key) for n, t in enumerate(pf.tasks)]
    task_waits = {f"task-{t.key}": n for n, t in enumerate(pf.tasks)}
    for field, name in named:
        why = _taken(name)
        if why:
            problems.append(f"{field}: {name!r} is {why}; expected a name of the playbook's own")
        elif name in first:
            problems.append(f"{field}: {name!r} is used already by {first[name]}; expected "
                            "each gate id and task key once (a gate and a task may not share "
                            "one)")
        elif field.startswith("gates.") and name in task_waits:
            problems.append(f"{field}: {name!r} is the wait of tasks.{task_waits[name]}; "
                            "expected a gate id that does not start with 'task-'")
        first.setdefault(name, field)
    return problems


def _placed(pf: PlaybookFile) -> list[str]:
    problems: list[str] = []
    gate_ids = [g.id for g in pf.gates]
    task_keys = {t.key for t in pf.tasks}
    off = {step for step, on in pf.steps.items() if not on}
    specs: list[tuple[str, GateSpec | TaskSpec]] = [
        *((f"gates.{n}", g) for n, g in enumerate(pf.gates)),
        *((f"tasks.{n}", t) for n, t in enumerate(pf.tasks))]
    for where, spec in specs:
        after, what = spec.after, where.split(".")[0][:-1]
        allowed = list(dict.fromkeys(
            [a for a in ANCHORS if a not in off] +
            [g for g in gate_ids if g != getattr(spec, "id", None) and not _taken(g)]))
        expected = f"expected one of: {', '.join(allowed)}"
        if after in off:
            problems.append(f"{where}.after: {after!r} is switched off (steps.{after}: false), "
                            f"a switched-off step something depends on; expected the step on, "
                            f"or the {what} after another: {', '.join(allowed)}")
        elif after in ANCHORS or after in gate_ids:
            continue
        elif after in task_keys:
            problems.append(f"{where}.after: {after!r} is a task, and nothing waits for a "
                            f"task but the archive; {expected}")
        elif after in frozenset(StepKey):
            problems.append(f"{where}.after: {after!r} is a built-in step a {what} cannot "
                            "follow (it is not on both paths, or comes after the archive); "
                            f"{expected}")
        else:
            problems.append(f"{where}.after: {after!r} is no step or gate of this playbook "
                            f"(a {what} after a missing step); {expected}")
    return problems


def _chains(pf: PlaybookFile) -> tuple[list[str], dict[str, str | None]]:
    """Gates waiting on each other in a circle, one line each; and each gate's first
    step (None when it has none: a circle or a missing step)."""
    after = {g.id: g.after for g in pf.gates}
    problems: list[str] = []
    root: dict[str, str | None] = {}
    seen_cycles: set[tuple[str, ...]] = set()
    for n, gate in enumerate(pf.gates):
        path = [gate.id]
        while path[-1] in after and after[path[-1]] not in path:
            path.append(after[path[-1]])
        last = path[-1]
        if last in after:  # back to a gate on the path: a circle
            circle = path[path.index(after[last]):]
            start = circle.index(min(circle))
            key = tuple(circle[start:] + circle[:start])
            if gate.id in circle and key not in seen_cycles:  # reported by its own gate
                seen_cycles.add(key)
                shown = " -> ".join([*key, key[0]])
                problems.append(f"gates.{n}.after: {gate.after!r} makes the gates wait on each "
                                f"other in a circle ({shown}), so none would ever be asked; "
                                "expected each chain of gates to start after a step")
            root[gate.id] = None
        else:
            root[gate.id] = last if last in ANCHORS else None
    return problems, root


def _binds(pf: PlaybookFile, root: dict[str, str | None]) -> list[str]:
    problems = []
    for n, gate in enumerate(pf.gates):
        steps = BINDS_AFTER.get(gate.binds)
        if steps and root.get(gate.id) is not None and root[gate.id] not in steps:
            problems.append(f"gates.{n}.binds: {gate.binds!r} needs the gate after "
                            f"{' or '.join(steps)} (itself or through the gates before it), "
                            f"not after {root[gate.id]!r}: there the {gate.binds} may not be "
                            "final yet")
    return problems


def placement_problems(pf: PlaybookFile) -> list[str]:
    """One line per rule broken, each naming its field, value and what was expected."""
    cycles, root = _chains(pf)
    return _names(pf) + _placed(pf) + cycles + _binds(pf, root)
