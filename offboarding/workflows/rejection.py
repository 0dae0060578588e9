"""Why a message cannot be accepted now: shared by the rules of every action."""

from __future__ import annotations

from offboarding.workflows.state import OffboardingState


class Rejected(Exception):
    """A message that cannot be accepted now; the text says why, for the sender."""


def waiting(s: OffboardingState, name: str, what: str) -> None:
    if what not in s.pending.waits:
        now_waiting = s.status.waiting_for or "nothing"
        raise Rejected(f"{name} is not expected now: the offboarding waits for {now_waiting}")


