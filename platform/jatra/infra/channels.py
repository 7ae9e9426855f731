"""Notification channels (SMS, e-mail): the dev mailbox of files, and SMTP for a real mail server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import structlog

from jatra.settings import Settings

log = structlog.get_logger()


class ChannelError(Exception):
    """The channel could not deliver; retryable."""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Notice:
    to: str
    subject: str
    body: str
    kind: str  # otp, ticket, payment_failed, cancelled ...
    attachments: tuple[Attachment, ...] = field(default=())


class Channel(Protocol):
    name: str

    async def deliver(self, notice: Notice) -> None: ...


class MailboxChannel:
    """Appends each message as a JSON line to STATE_DIR/mailbox/<recipient>.jsonl; attachments beside it."""

    name = "mailbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, to: str) -> Path:
        safe = "".join(ch for ch in to if ch.isalnum() or ch in "+@._-")
        return self.directory / f"{safe}.jsonl"

    async def deliver(self, notice: Notice) -> None:
        await asyncio.to_thread(self._write, notice)

    def _write(self, notice: Notice) -> None:
        path = self.path_for(notice.to)
        path.parent.mkdir(parents=True, exist_ok=True)
        files = []
        for attachment in notice.attachments:
            target = path.with_suffix("") / attachment.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(attachment.content)
            files.append(str(target))
        line = {"at": dt.datetime.now(dt.UTC).isoformat(), "to": notice.to, "kind": notice.kind,
                "subject": notice.subject, "body": notice.body, "attachments": files}  # fmt: skip
        with path.open("a") as out:
            out.write(json.dumps(line) + "\n")

    def read(self, to: str) -> list[dict[str, str]]:
        path = self.path_for(to)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class SmtpChannel:
    """E-mail through a real SMTP server (JATRA_SMTP_HOST/PORT), in a thread so the loop never blocks."""

    name = "smtp"

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    async def deliver(self, notice: Notice) -> None:
        await asyncio.to_thread(self._send, notice)

    def _send(self, notice: Notice) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, notice.to, notice.subject
        message.set_content(notice.body)
        for attachment in notice.attachments:
            main, sub = attachment.mime.split("/")
            message.add_attachment(
                attachment.content, maintype=main, subtype=sub, filename=attachment.filename
            )
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"smtp {self.host}:{self.port}: {exc}") from exc


def sms_channel(settings: Settings) -> Channel:
    """SMS always goes to the dev mailbox here: no SMS gateway exists on these machines."""
    return MailboxChannel(settings.mailbox_dir)


def email_channel(settings: Settings) -> Channel:
    if settings.notification_channel == "smtp":
        return SmtpChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender)
    return MailboxChannel(settings.mailbox_dir)
