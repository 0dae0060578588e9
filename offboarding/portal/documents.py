"""What a link is about, read from the offboarding's own status: the statement or export
it was issued for, whether that is still the current one, and what was decided on it."""

from __future__ import annotations

from dataclasses import dataclass

from offboarding.models.records import DataPackage
from offboarding.models.settlement import Statement
from offboarding.models.stages import Wait
from offboarding.models.status import Decision, OffboardingStatus
from offboarding.portal.forms import DECISIONS
from offboarding.security.links import LinkClaims

WAITS = {"settlement": Wait.SETTLEMENT_APPROVAL, "data": Wait.DATA_VERIFICATION}


class UnknownDocument(Exception):
    """A genuine link whose document this offboarding never issued."""


@dataclass(frozen=True)
class Subject:
    claims: LinkClaims
    status: OffboardingStatus
    statement: Statement | None
    package: DataPackage | None
    current: bool
    """It is the newest statement or export."""
    decision: Decision | None
    """What was decided on it, by whom, how and when."""
    newest: Statement | DataPackage
    open: bool
    """The offboarding waits for this very decision now: the form is shown."""

    @property
    def version(self) -> str:
        document = self.statement or self.package
        assert document is not None
        return _label(document)

    @property
    def newest_version(self) -> str:
        return _label(self.newest)


def _label(document: Statement | DataPackage) -> str:
    if isinstance(document, Statement):
        return f"statement v{document.version}"
    return f"export {document.attempt}"


def about(status: OffboardingStatus, claims: LinkClaims) -> Subject:
    statement = package = None
    newest: Statement | DataPackage
    if claims.f == "settlement":
        statement = next((s for s in status.statements if s.hash == claims.d), None)
        if statement is None:
            raise UnknownDocument(claims.d)
        newest = status.statements[-1]
        current = newest.hash == claims.d
    else:
        package = next((p for p in status.data_packages if p.manifest_sha256 == claims.d), None)
        if package is None:
            raise UnknownDocument(claims.d)
        newest = status.data_packages[-1]
        current = newest.manifest_sha256 == claims.d
    actions = set(DECISIONS[claims.f].values())
    decision = next((d for d in reversed(status.decisions)
                     if d.about == claims.d and d.action in actions), None)
    waiting = (WAITS[claims.f] in status.waits and status.outcome is None
               and status.ended_as is None)
    return Subject(claims, status, statement, package, current, decision, newest,
                   open=current and decision is None and waiting)
