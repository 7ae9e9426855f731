"""The SMTP e-mail channel against a real SMTP server (aiosmtpd) on loopback, attachment included."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from jatra.infra.channels import Attachment, ChannelError, Notice, SmtpChannel
from jatra.stack.procs import free_port

pytestmark = pytest.mark.integration


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_an_eticket_is_mailed_with_its_pdf(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    channel = SmtpChannel("127.0.0.1", port, "tickets@jatra.example")
    pdf = b"%PDF-1.4 test"
    await channel.deliver(
        Notice(
            "rider@example.com",
            "Your Jatra e-ticket JT123",
            "Have a good trip",
            "confirmed",
            (Attachment("jatra-JT123.pdf", pdf),),
        )
    )
    [message] = inbox.messages
    assert message["To"] == "rider@example.com" and message["Subject"] == "Your Jatra e-ticket JT123"
    [attachment] = [part for part in message.walk() if part.get_filename() == "jatra-JT123.pdf"]
    assert attachment.get_payload(decode=True) == pdf


async def test_a_dead_mail_server_is_a_retryable_channel_error() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), "tickets@jatra.example")
    with pytest.raises(ChannelError):
        await channel.deliver(Notice("rider@example.com", "s", "b", "confirmed"))
