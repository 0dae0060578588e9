"""Sending mail: jinja2 templates rendered to text and HTML, delivered by aiosmtplib.

Every message's Message-ID is derived from the workflow id and a per-message key. An
outbox on disk remembers which Message-IDs the SMTP server accepted, so an activity retry
after a crash does not send the same message twice (except in the one window SMTP cannot
close: the server accepted the message but the connection broke before we heard so).
"""

from __future__ import annotations

import asyncio
import email.utils
import mimetypes
import re
from datetime import UTC, datetime, timedelta
from email import encoders
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path, PurePosixPath
from typing import Any

import aiosmtplib
import jinja2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from offboarding.activities.bounded_render import (
    TEXT_OPTIONS,
    Rendered,
    TooCostly,
    filters,
    render_all,
)
from offboarding.activities.mime import (
    SMTP_WIRE,
    address,
    bare,
    boundary,
    header_value,
    subject_of,
)
from offboarding.activities.outbox import FileOutbox, Outbox
from offboarding.activities.smtp_pool import SmtpPool
from offboarding.activities.stores import BundleStore, FileSystemStore, safe_key
from offboarding.config import Settings
from offboarding.models.records import Attachment, EmailReceipt, EmailRequest
from offboarding.models.text import unprintable
from offboarding.tracing import span

TEMPLATES = Path(__file__).parent / "templates"
NOT_OVERRIDABLE = frozenset({"layout.html", "closure_report.html"})
"""Packaged templates a playbook cannot replace: the HTML around every message and the
archive's report. Every ``NAME.txt`` can be (``playbooks``)."""
LINK_STAND_IN = "https://portal.invalid/o/(your-link)"
"""What a playbook's template is first rendered with instead of the recipient's link."""


def _unbuildable(req: EmailRequest, rendered: Rendered) -> None:
    if rendered.text is None:
        raise ApplicationError(f"message {req.key} cannot be built: {rendered.error}",
                               type="MessageUnbuildable", non_retryable=True)


def _paragraphs(text: str) -> list[dict[str, Any]]:
    """Split a text body into paragraphs and bullet lists for the HTML layout."""
    blocks: list[dict[str, Any]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = chunk.splitlines()
        if all(line.lstrip().startswith("- ") for line in lines):
            blocks.append({"list": [line.lstrip()[2:] for line in lines]})
        else:
            blocks.append({"text": lines})
    return blocks


class Mailer:
    def __init__(self, settings: Settings, outbox: Outbox | None = None,
                 archive: BundleStore | None = None) -> None:
        self.settings = settings
        self.archive: BundleStore = archive or FileSystemStore(settings.archive_root)
        """Where the closure report attached to the farewell is read from."""
        self.outbox: Outbox = outbox or FileOutbox(settings.outbox_dir)
        self.pool = SmtpPool(settings)
        self.links = settings.links()
        # The packaged templates do not change under a running worker: not stat()ed again
        # for each message (jinja's auto_reload), two file checks a message.
        self.env = filters(jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), auto_reload=False,
            autoescape=jinja2.select_autoescape(["html"]), **TEXT_OPTIONS))

    def message_id(self, workflow_id: str, key: str) -> str:
        return f"<{safe_key(key)}.{safe_key(workflow_id)}@{self.settings.message_id_domain}>"

    def recipients(self, req: EmailRequest) -> list[str]:
        return [*req.to, *([self.settings.ops_email] if req.to_ops else [])]

    def render(self, req: EmailRequest) -> Message:
        return self.compose(req)[0]

    def compose(self, req: EmailRequest) -> tuple[Message, dict[str, Any]]:
        """The message and its link (if it carries one), or a permanent error (type
        MessageUnbuildable) when it cannot be built: retrying would fail the same way
        forever, so ops must see it."""
        try:
            return self._render(req)
        except ApplicationError:
            raise
        except Exception as err:  # a template or header that cannot be made
            raise ApplicationError(f"message {req.key} cannot be built: {err}",
                                   type="MessageUnbuildable", non_retryable=True) from None

    def _link(self, req: EmailRequest) -> dict[str, Any]:
        """The recipient's own approval link for the template (``link_url`` None when no
        link keys are configured: the template then says how to answer through ops)."""
        if req.link is None:
            return {}
        if len(req.to) != 1 or req.cc or req.to_ops:
            raise ApplicationError(f"message {req.key} carries a personal link and must "
                                   "have exactly one recipient", type="MessageUnbuildable",
                                   non_retryable=True)
        if self.links is None:
            return {"link_url": None, "link_expires": None, "link_keys": {}}
        valid = timedelta(days=self.settings.link_validity_days)
        now = datetime.now(UTC)
        token = self.links.mint(req.workflow_id, req.link.family, req.link.document,
                                req.to[0], now, valid, run_id=req.run_id)
        return {"link_url": self.settings.portal_link(req.workflow_id, token),
                "link_expires": now + valid, "link_keys": self.links.active_public()}

    def _render(self, req: EmailRequest) -> tuple[Message, dict[str, Any]]:
        """Built with the ``compat32`` MIME classes: the email benchmark showed the modern
        ``EmailMessage`` API spending most of a send parsing and re-folding its own
        headers, several times slower for the same bytes on the wire."""
        link = self._link(req)
        text = self._text(req, {k: v for k, v in link.items() if k != "link_keys"})
        first, _, body = text.partition("\n")
        whose = "the playbook's " if req.template_text is not None else ""
        if not first.startswith("Subject: "):
            raise ApplicationError(
                f"{whose}template {req.template}.txt must start with 'Subject: '",
                type="MessageUnbuildable", non_retryable=True)
        subject = first.removeprefix("Subject: ").strip()
        headers = [("Subject", subject), *(("To/Cc", a) for a in
                                           [*self.recipients(req), *req.cc])]
        if req.sender_name is not None:
            headers.append(("From name", req.sender_name))
        if req.reply_to is not None:
            headers.append(("Reply-To", req.reply_to))
        for header, value in headers:
            # VT, FF, NEL, U+2028... are line breaks to the email package: a second header.
            why = unprintable(value)
            if why:
                raise ApplicationError(f"message {req.key}: the {header} header {why}",
                                       type="MessageUnbuildable", non_retryable=True)
        html = self.env.get_template("layout.html").render(
            subject=subject, blocks=_paragraphs(body)
        )
        alternative = MIMEMultipart("alternative", boundary=boundary())
        alternative.attach(MIMEText(body.strip() + "\n", "plain", "utf-8"))
        alternative.attach(MIMEText(html, "html", "utf-8"))
        attachments = [self._attachment(att) for att in req.attachments]
        if attachments:
            msg: Message = MIMEMultipart("mixed", boundary=boundary())
            msg.attach(alternative)
            for part in attachments:
                msg.attach(part)
        else:
            msg = alternative
        msg["Subject"] = header_value(subject)
        msg["From"] = self._sender(req)
        if req.reply_to is not None:
            msg["Reply-To"] = address(req.reply_to)
        msg["To"] = ", ".join(address(a) for a in self.recipients(req))
        if req.cc:
            msg["Cc"] = ", ".join(address(a) for a in req.cc)
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = self.message_id(req.records, req.key)
        msg["X-Offboarding-Workflow"] = req.workflow_id
        return msg, link

    def _text(self, req: EmailRequest, link: dict[str, Any]) -> str:
        """The message's text: a packaged template rendered here, a playbook's own in a
        child process with bounds (``bounded_render``). A playbook's template must not
        put the recipient's link where the history records it (readable by anyone with
        namespace access, who could then decide as them): the subject, in the receipt,
        and an error's text, in the problem. It is rendered with a stand-in for the link
        first: an error is the stand-in's, and a subject that differs with the real link
        is refused."""
        if req.template_text is None:
            return self.env.get_template(f"{req.template}.txt").render(**req.context, **link)
        linked = bool(link.get("link_url"))
        contexts = [{**req.context, **link, "link_url": LINK_STAND_IN}] if linked else []
        try:
            results = render_all(req.template_text, [*contexts, {**req.context, **link}])
        except TooCostly as err:
            raise ApplicationError(f"message {req.key} cannot be built: the playbook's "
                                   f"template {req.template}.txt is too costly: {err}",
                                   type="MessageUnbuildable", non_retryable=True) from None
        shown, text = results[0], results[-1]
        _unbuildable(req, shown)
        if text.text is None:
            raise ApplicationError(f"message {req.key} cannot be built: the playbook's "
                                   f"template {req.template}.txt fails with the recipient's "
                                   "link only", type="MessageUnbuildable",
                                   non_retryable=True)
        assert shown.text is not None
        if linked and text.text.partition("\n")[0] != shown.text.partition("\n")[0]:
            raise ApplicationError(f"message {req.key}: the playbook's template "
                                   f"{req.template}.txt puts the recipient's link in the "
                                   "subject, which the offboarding's history records",
                                   type="MessageUnbuildable", non_retryable=True)
        return text.text

    def _sender(self, req: EmailRequest) -> str:
        """The worker's From address, under the playbook's display name when it has one
        (RFC 2047-encoded when it is not ASCII, quoted when it holds a comma or quote)."""
        if req.sender_name is None:
            return address(self.settings.mail_from)
        bare_from = bare(self.settings.mail_from) or self.settings.mail_from
        return email.utils.formataddr((req.sender_name, bare_from), charset="utf-8")

    def _attachment(self, att: Attachment) -> MIMEBase:
        name = PurePosixPath(att.path).name
        data = self._archived(att.path) if att.root == "archive" else self._document(att.path)
        if data is None:
            raise ApplicationError(
                f"attachment {att.path!r} is not a file under the {att.root} root",
                type="MissingAttachment", non_retryable=True,
            )
        ctype, _ = mimetypes.guess_type(name)
        maintype, subtype = (ctype or "application/octet-stream").split("/", 1)
        part = MIMEBase(maintype, subtype)
        part.set_payload(data)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=name)
        return part

    def _document(self, rel: str) -> bytes | None:
        # Links are never followed, on any component of the path.
        from offboarding.activities.data_sets import read_document

        return read_document(self.settings.documents_root, rel)

    def _archived(self, rel: str) -> bytes | None:
        """A file of an archive bundle (``<bundle key>/<name>``), from the archive store."""
        key, _, name = rel.rpartition("/")
        try:
            return self.archive.read(key, name) if key else None
        except ValueError:  # a key that escapes the store
            return None

    @activity.defn(name="send_email")
    async def send_email(self, req: EmailRequest) -> EmailReceipt:
        receipt = self.outbox.receipt(req.records, req.key)
        if receipt is not None:
            activity.logger.info("message %s was already accepted; not sent again", receipt.key)
            return receipt.model_copy(update={"already_sent": True})
        # A playbook's template renders in a child process (bounded_render): waited for
        # off the event loop, so the worker's other activities go on meanwhile.
        msg, link = (await asyncio.to_thread(self.compose, req) if req.template_text
                     else self.compose(req))
        raw = msg.as_bytes(policy=SMTP_WIRE)  # flattened once: sent and kept alike
        held = self.outbox.claim(req.records, req.key)
        if held:  # retried by Temporal until that send is recorded or its claim expires
            raise ApplicationError(f"{held}; waiting for it", type="SendInProgress")
        try:
            return await self._send(req, msg, raw, link)
        except BaseException:
            self.outbox.release(req.records, req.key)
            raise

    async def _send(self, req: EmailRequest, msg: Message, raw: bytes,
                    link: dict[str, Any]) -> EmailReceipt:
        s = self.settings
        meter = activity.metric_meter()
        sender = bare(s.mail_from)
        def failed(error: str) -> None:
            meter.create_counter("offboarding_emails_failed", "Emails refused or failed").add(
                1, {"template": req.template, "error": error})

        try:
            with span("smtp send", {"smtp.server": f"{s.smtp_host}:{s.smtp_port}",
                                    "email.key": req.key, "email.template": req.template}):
                refused = await self.pool.send(sender, [*self.recipients(req), *req.cc], raw)
        except aiosmtplib.SMTPRecipientsRefused as err:
            failed("RecipientRefused")
            everyone = ", ".join(r.recipient for r in err.recipients)
            raise ApplicationError(
                f"the mail server refused {everyone}", type="RecipientRefused", non_retryable=True
            ) from None
        except aiosmtplib.SMTPResponseException as err:
            permanent = 500 <= err.code < 600
            failed(f"smtp-{err.code}")
            raise ApplicationError(
                f"the mail server answered {err.code} {err.message}",
                type="SmtpPermanent" if permanent else "SmtpTransient",
                non_retryable=permanent,
            ) from None
        except (aiosmtplib.SMTPException, OSError) as err:
            failed("unreachable")
            # Connection refused, timeouts, TLS trouble: worth retrying with backoff.
            raise ApplicationError(
                f"could not reach the mail server {s.smtp_host}:{s.smtp_port}: "
                f"{type(err).__name__}", type="SmtpUnavailable",
            ) from None
        meter.create_counter("offboarding_emails_sent", "Emails accepted by the SMTP server").add(
            1, {"template": req.template})
        activity.logger.info("sent %s to %d recipient(s)", req.key, len(self.recipients(req)),
                             extra={"step": req.key})
        if refused:  # delivered to the others: not resent, but reported
            failed("RecipientRefused")
        receipt = EmailReceipt(
            key=req.key, message_id=str(msg["Message-ID"]),
            to=[r for r in [*self.recipients(req), *req.cc] if r not in refused],
            refused=refused, subject=subject_of(msg), sent_at=datetime.now(UTC),
            link_keys=link.get("link_keys", {}), link_expires=link.get("link_expires"),
        )
        self.outbox.record(req.records, receipt, raw)
        return receipt

