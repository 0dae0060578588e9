"""Every human action as a signal and a validated update under the same name, declared
once from ``models.messages.ACTIONS``: adding an action to that table (and its rule to
``rules.py``) gives the workflow its three handlers.

Signals cannot answer, so an invalid one is recorded as *ignored*, with why; an update
is validated first and a refused one leaves no trace in history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from offboarding.models.messages import ACTIONS, Ack, Message, Via
    from offboarding.security.codec import UNDECODABLE, UNDECODABLE_REASON

from offboarding.workflows import authority, causes, rules
from offboarding.workflows.context import Run

W = TypeVar("W", bound=type)


class HasRun(Protocol):
    run_state: Run


def receive_signal(run: Run, name: str, raw: RawValue) -> None:
    s, now = run.s, run.clock.now()
    meta = raw.payload.metadata
    if meta.get("encoding") == UNDECODABLE:
        why = meta.get(UNDECODABLE_REASON, b"").decode(errors="replace")
        s.ignore(now, name, None, f"payload cannot be decoded: {why}")
        run.vis.publish()
        return
    try:
        payload = workflow.payload_converter().from_payload(raw.payload, dict)
        msg = ACTIONS[name].model.model_validate(payload)
    except Exception as err:  # malformed JSON or fields: record it, change nothing else
        s.ignore(now, name, None, f"malformed payload: {_short(err)}")
        run.vis.publish()
        return
    try:
        rules.validate(s, name, msg, "signal", now)
    except rules.Rejected as err:
        s.ignore(now, name, msg.by, str(err))
        run.vis.publish()
        return
    _accept(run, name, msg, "signal")


def validate_update(run: Run, name: str, msg: Message) -> None:
    try:
        rules.validate(run.s, name, msg, authority.channel(msg, signal=False), run.clock.now())
    except rules.Rejected as err:
        raise ApplicationError(str(err), type="Rejected", non_retryable=True) from None


def receive_update(run: Run, name: str, msg: Message) -> Ack:
    return _accept(run, name, msg, authority.channel(msg, signal=False))


def _accept(run: Run, name: str, msg: Message, via: Via) -> Ack:
    detail = rules.apply(run.s, name, msg, run.clock.now(), via)
    causes.note(run)
    run.vis.publish()
    return Ack(stage=run.s.status.stage, detail=detail)


def unknown_signal(run: Run, name: str) -> None:
    """A signal nobody handles would wait in the SDK's buffer forever, unseen."""
    known = ", ".join(sorted(ACTIONS))
    run.s.ignore(run.clock.now(), name[:100], None, f"no such action; the actions are: {known}")
    run.vis.publish()


def declare_actions(cls: W) -> W:
    """Add a signal, an update and its validator per action to a workflow class whose
    instances keep their ``Run`` in ``run_state``. Apply below ``@workflow.defn``."""
    for name, action in ACTIONS.items():
        for attr, fn in _handlers(cls, name, action.model).items():
            setattr(cls, attr, fn)
    return cls


def _handlers(cls: type, name: str, model: type[Message]) -> dict[str, Any]:
    """The three methods of one action, by attribute name (approve_settlement_signal,
    approve_settlement, approve_settlement_validator); Temporal knows them by ``name``."""
    def on_signal(self: HasRun, raw: RawValue) -> None:
        receive_signal(self.run_state, name, raw)

    def on_update(self: HasRun, msg: Message) -> Ack:
        return receive_update(self.run_state, name, msg)

    def validator(self: HasRun, msg: Message) -> None:
        validate_update(self.run_state, name, msg)

    attr = name.replace("-", "_")
    for fn, suffix in ((on_signal, "_signal"), (on_update, ""), (validator, "_validator")):
        fn.__name__ = attr + suffix
        fn.__qualname__ = f"{cls.__name__}.{fn.__name__}"
        fn.__module__ = cls.__module__
    # The update's argument type is what the data converter decodes the payload into.
    on_update.__annotations__ = {"msg": model, "return": Ack}
    validator.__annotations__ = {"msg": model, "return": None}
    on_signal.__annotations__ = {"raw": RawValue, "return": None}
    update: Callable[..., Any] = workflow.update(name=name)(on_update)
    update.validator(validator)  # type: ignore[attr-defined]
    return {on_signal.__name__: workflow.signal(name=name)(on_signal), attr: update,
            validator.__name__: validator}


def _short(err: Exception) -> str:
    return str(err).replace("\n", " ")[:300]
