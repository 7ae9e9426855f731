"""What each booking event tells the passenger, by SMS and by e-mail."""

from __future__ import annotations

from typing import Any

from jatra.infra.channels import Attachment, Notice


def sms(event: str, view: dict[str, Any], phone: str, reason: str | None) -> Notice:
    trip = f"{view['train_name']} {view['from']}-{view['to']} {view['departs_at'][:16].replace('T', ' ')}"
    texts = {
        "booking.confirmed": f"Jatra: ticket {view['ticket_number']} confirmed. {trip}, "
        f"seats {', '.join(view['seat_labels'])}. Fare {view['amount']} BDT.",
        "booking.payment_failed": f"Jatra: payment for {trip} failed ({reason or 'unknown reason'}). "
        "Your seats were released; nothing was charged.",
        "booking.cancelled": f"Jatra: ticket {view['ticket_number']} for {trip} is cancelled. "
        "Your refund is on its way.",
    }
    return Notice(phone, "Jatra", texts[event], event.removeprefix("booking."))


def email(event: str, view: dict[str, Any], address: str, reason: str | None, pdf: bytes | None) -> Notice:
    note = sms(event, view, address, reason)
    subject = {
        "booking.confirmed": f"Your Jatra e-ticket {view['ticket_number']}",
        "booking.payment_failed": "Your Jatra booking could not be paid",
        "booking.cancelled": f"Jatra ticket {view['ticket_number']} cancelled",
    }[event]
    attachments = (Attachment(f"jatra-{view['ticket_number']}.pdf", pdf),) if pdf else ()
    return Notice(address, subject, note.body, note.kind, attachments)
