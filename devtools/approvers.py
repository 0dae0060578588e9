"""Approvers as the demo plays them: they find their link in the mail they received (the
capture directory of ``make run``), open the portal's page, check what it shows and
press a button, exactly as a person in a browser would (no JavaScript is needed)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx

LINK = re.compile(r"https?://\S+/o/[^\s<>\"]+")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    workflow: str
    text: str


def mailbox(directory: Path) -> list[Mail]:
    """Every captured message, oldest first (the files' names sort by arrival)."""
    found = []
    for path in sorted(directory.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(("plain",))
        found.append(Mail(str(msg["To"]), str(msg["Subject"]).strip(),
                          str(msg["X-Offboarding-Workflow"]),
                          str(body.get_content()) if body is not None else ""))
    return found


def newest_link(directory: Path, workflow_id: str, to: str, subject: str) -> str | None:
    """The link in the newest message to ``to`` about ``workflow_id`` whose subject
    contains ``subject`` (a reminder carries a fresh one)."""
    for mail in reversed(mailbox(directory)):
        if mail.workflow == workflow_id and to in mail.to and subject in mail.subject:
            links = LINK.findall(mail.text)
            if links:
                return str(links[0])
    return None


async def decide(http: httpx.AsyncClient, link: str, decision: str,
                 **fields: str) -> httpx.Response:
    """Open the page, then send its form as its button would."""
    page = await http.get(link)
    page.raise_for_status()
    if 'name="token"' not in page.text:
        raise RuntimeError(f"the page at {link} offers no decision (HTTP {page.status_code})")
    base, token = link.rsplit("/", 1)
    return await http.post(base + "/decide", data={"token": token, "decision": decision,
                                                   **fields}, follow_redirects=True)


async def check_download(http: httpx.AsyncClient, link: str, expected: str) -> str:
    """Download the manifest and the package through the link and check them as the
    steward's email says; returns what was checked."""
    manifest = await http.get(link + "/manifest.json")
    manifest.raise_for_status()
    if hashlib.sha256(manifest.content).hexdigest() != expected:
        raise RuntimeError("the downloaded manifest does not match the emailed checksum")
    digest = hashlib.sha256()
    size = 0
    async with http.stream("GET", link + "/data.zip") as package:
        package.raise_for_status()
        async for chunk in package.aiter_bytes():
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != package.headers["x-checksum-sha256"]:
        raise RuntimeError("the downloaded data.zip does not match its SHA-256 header")
    return f"manifest {expected[:12]} and data.zip ({size:,} bytes) match"
