"""The dev mailbox: each message a JSON line per recipient, attachments beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

from jatra.infra.channels import Attachment, MailboxChannel, Notice


def _ticket(to: str, number: int) -> Notice:
    pdf = Attachment(f"JT{number}.pdf", b"%PDF-1.4 ticket")
    return Notice(to=to, subject="Your e-ticket", body="attached", kind="ticket", attachments=(pdf,))


def _attached(mails: list[dict[str, str]]) -> list[bytes]:
    return [Path(m["attachments"][0]).read_bytes() for m in mails]


async def test_messages_are_appended_with_their_attachments(tmp_path: Path) -> None:
    box = MailboxChannel(tmp_path / "mailbox")
    await box.deliver(Notice(to="+8801712345678", subject="", body="code is 123456", kind="otp"))
    await box.deliver(_ticket("a@example.com", 1))
    await box.deliver(_ticket("a@example.com", 2))
    assert [m["body"] for m in box.read("+8801712345678")] == ["code is 123456"]
    mails = box.read("a@example.com")
    assert _attached(mails) == [b"%PDF-1.4 ticket"] * 2
    assert [Path(m["attachments"][0]).name for m in mails] == ["JT1.pdf", "JT2.pdf"]


async def test_a_directory_removed_after_its_first_message_is_made_again(tmp_path: Path) -> None:
    # directories are made once per process: one removed meanwhile must not fail every message after
    box = MailboxChannel(tmp_path / "mailbox")
    await box.deliver(_ticket("a@example.com", 1))
    shutil.rmtree(tmp_path / "mailbox")
    await box.deliver(_ticket("a@example.com", 2))
    assert [Path(m["attachments"][0]).name for m in box.read("a@example.com")] == ["JT2.pdf"]
