"""Which trace the work after a person's decision belongs to.

OpenTelemetry's context follows calls, and a workflow outlives every call made to it: an
approval's trace would end in the update handler, since the activity the approval releases
is scheduled later, by the stage that was waiting for it. So the handler notes the
context it ran in, and the wait that the decision ends carries on in that context: the
SMTP call after an approval sits in the trace of the CLI or portal request that approved.
With tracing off the context is empty and this does nothing. Only the trace context moves
(it travels in activity headers, which replay does not compare); no command changes."""

from __future__ import annotations

from opentelemetry.context import attach, get_current

from offboarding.workflows.context import Run


def note(run: Run) -> None:
    """In a handler that accepted a decision: the decision's trace is the one to follow."""
    run.cause = get_current()


def follow(run: Run) -> None:
    """After a wait: go on in the trace of the decision that ended it, if one came."""
    if run.cause is not None:
        attach(run.cause)
        run.cause = None
