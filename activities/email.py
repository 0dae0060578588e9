"""Sending mail: jinja2 templates rendered to text and HTML, delivered by aiosmtplib.

Every message's Message-ID is derived from the workflow id and a per-message key. An
outbox on disk remembers which Message-IDs the SMTP server accepted, so an activity retry
after a crash does not send the same message twice (except in the one window SMTP cannot
close: the server accepted the message but the connection broke before we heard so).
"""

from __future__ import annotations

import email.policy
import email.utils
import mimetypes
import re
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import jinja2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.smtp_pool import SmtpPool
from activities.stores import safe_key
from models.records import EmailReceipt, EmailRequest
from settings import Settings

TEMPLATES = Path(__file__).parent / "templates"


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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = SmtpPool(settings)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["money"] = lambda v, cur="": f"{cur} {Decimal(str(v)):,.2f}".strip()

    def message_id(self, workflow_id: str, key: str) -> str:
        return f"<{safe_key(key)}.{safe_key(workflow_id)}@{self.settings.message_id_domain}>"

    def recipients(self, req: EmailRequest) -> list[str]:
        return [*req.to, *([self.settings.ops_email] if req.to_ops else [])]

    def render(self, req: EmailRequest) -> EmailMessage:
        text = self.env.get_template(f"{req.template}.txt").render(**req.context)
        first, _, body = text.partition("\n")
        if not first.startswith("Subject: "):
            raise ApplicationError(
                f"template {req.template}.txt must start with 'Subject: '", non_retryable=True
            )
        subject = first.removeprefix("Subject: ").strip()
        html = self.env.get_template("layout.html").render(
            subject=subject, blocks=_paragraphs(body)
        )
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self.settings.mail_from
        msg["To"] = ", ".join(self.recipients(req))
        if req.cc:
            msg["Cc"] = ", ".join(req.cc)
        msg["Message-ID"] = self.message_id(req.workflow_id, req.key)
        msg["X-Offboarding-Workflow"] = req.workflow_id
        msg.set_content(body.strip() + "\n")
        msg.add_alternative(html, subtype="html")
        for att in req.attachments:
            root = (
                self.settings.documents_root if att.root == "documents"
                else self.settings.archive_root
            ).resolve()
            path = (root / att.path).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                raise ApplicationError(
                    f"attachment {att.path!r} is not a file under the {att.root} root",
                    type="MissingAttachment", non_retryable=True,
                )
            ctype, _ = mimetypes.guess_type(path.name)
            maintype, subtype = (ctype or "application/octet-stream").split("/", 1)
            msg.add_attachment(
                path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
            )
        return msg

    def _outbox(self, req: EmailRequest) -> Path:
        return self.settings.outbox_dir / safe_key(req.workflow_id) / f"{safe_key(req.key)}"

    @activity.defn(name="send_email")
    async def send_email(self, req: EmailRequest) -> EmailReceipt:
        outbox = self._outbox(req)
        receipt_path = outbox.with_suffix(".json")
        if receipt_path.exists():
            receipt = EmailReceipt.model_validate_json(receipt_path.read_text())
            activity.logger.info("message %s was already accepted; not sent again", receipt.key)
            return receipt.model_copy(update={"already_sent": True})
        msg = self.render(req)
        raw = msg.as_bytes(policy=email.policy.SMTP)  # flattened once: sent and kept alike
        s = self.settings
        meter = activity.metric_meter()
        sender = email.utils.parseaddr(s.mail_from)[1]
        def failed(error: str) -> None:
            meter.create_counter("offboarding_emails_failed", "Emails refused or failed").add(
                1, {"template": req.template, "error": error})

        try:
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
            key=req.key, message_id=msg["Message-ID"],
            to=[r for r in [*self.recipients(req), *req.cc] if r not in refused],
            refused=refused, subject=msg["Subject"], sent_at=datetime.now(UTC),
        )
        outbox.parent.mkdir(parents=True, exist_ok=True)
        outbox.with_suffix(".eml").write_bytes(raw)
        tmp = receipt_path.with_suffix(".tmp")
        tmp.write_text(receipt.model_dump_json())
        tmp.replace(receipt_path)
        return receipt


def sent_messages(settings: Settings, workflow_id: str) -> dict[str, bytes]:
    """The raw messages the outbox holds for one offboarding, for the archive."""
    folder = settings.outbox_dir / safe_key(workflow_id)
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.eml"))}
