"""Every human action as a signal and a validated update under the same name, declared
once from ``models.messages.ACTIONS``: adding an action to that table (and its rule to
``rules.py``) gives the workflow its update, its validator and its signal.

Signals cannot answer, so an invalid one is recorded as *ignored*, with why; an update
is validated first and a refused one leaves no trace in history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from offboarding.models.messages import ACTIONS, Ack, Message, Via, why_invalid
from offboarding.security.codec import UNDECODABLE, UNDECODABLE_REASON
from offboarding.workflows import causes, rules
from offboarding.workflows.context import Run

W = TypeVar("W", bound=type)


class HasRun(Protocol):
    run_state: Run


def receive_signal(run: Run, name: str, args: Sequence[RawValue]) -> None:
    """Any signal, under any name, with any number of arguments in any encoding: each one
    is either applied or recorded as ignored with why. A signal has no sender to answer,
    and one the SDK could not hand to a handler failed every workflow task after it."""
    s, now = run.s, run.clock.now()
    if name not in ACTIONS:
        known = ", ".join(sorted(ACTIONS))
        s.ignore(now, name[:100], None, f"no such action; the actions are: {known}")
        run.vis.publish()
        return
    if len(args) != 1:
        s.ignore(now, name, None, f"expected one JSON object as the signal's input, got "
                                  f"{len(args)} inputs")
        run.vis.publish()
        return
    raw = args[0]
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
        rules.validate(run.s, name, msg, msg.via, run.clock.now())
    except rules.Rejected as err:
        raise ApplicationError(str(err), type="Rejected", non_retryable=True) from None


def receive_update(run: Run, name: str, msg: Message) -> Ack:
    return _accept(run, name, msg, msg.via)


def _accept(run: Run, name: str, msg: Message, via: Via) -> Ack:
    detail = rules.apply(run.s, name, msg, via, run.clock.now())
    causes.note(run)
    run.vis.publish()
    return Ack(stage=run.s.status.stage, detail=detail)


def declare_actions(cls: W) -> W:
    """Add an update and its validator per action to a workflow class whose instances
    keep their ``Run`` in ``run_state``. Apply below ``@workflow.defn``.

    Signals are not declared by name: the class's one dynamic signal handler takes them
    all (``receive_signal``). A named handler is given exactly the arguments the sender
    sent, so ``temporal workflow signal`` with no input, or with two, raised in it; the
    dynamic handler receives every argument as a raw payload, whatever their number."""
    for name, action in ACTIONS.items():
        for attr, fn in _handlers(cls, name, action.model).items():
            setattr(cls, attr, fn)
    return cls


def _handlers(cls: type, name: str, model: type[Message]) -> dict[str, Any]:
    """The two methods of one action's update, by attribute name (approve_settlement,
    approve_settlement_validator); Temporal knows them by ``name``."""
    def on_update(self: HasRun, msg: Message) -> Ack:
        return receive_update(self.run_state, name, msg)

    def validator(self: HasRun, msg: Message) -> None:
        validate_update(self.run_state, name, msg)

    attr = name.replace("-", "_")
    for fn, suffix in ((on_update, ""), (validator, "_validator")):
        fn.__name__ = attr + suffix
        fn.__qualname__ = f"{cls.__name__}.{fn.__name__}"
        fn.__module__ = cls.__module__
    # The update's argument type is what the data converter decodes the payload into.
    on_update.__annotations__ = {"msg": model, "return": Ack}
    validator.__annotations__ = {"msg": model, "return": None}
    update: Callable[..., Any] = workflow.update(name=name)(on_update)
    update.validator(validator)  # type: ignore[attr-defined]
    return {attr: update, validator.__name__: validator}


def _short(err: Exception) -> str:
    return why_invalid(err)[:300]
