"""A booking's ticket number: the same for every confirmation of it, and not shared by two bookings."""

from __future__ import annotations

import re
import uuid

from jatra.payments.settle import ticket_number


def test_the_same_booking_gets_the_same_number() -> None:
    booking = uuid.uuid4()
    assert ticket_number(booking) == ticket_number(uuid.UUID(str(booking)))
    assert re.fullmatch(r"JT[A-Z2-7]{15}", ticket_number(booking))  # fits bookings.ticket_number (20)


def test_bookings_alike_in_their_first_40_bits_get_different_numbers() -> None:
    """What happened in a rush: two booking ids with the same first ten hex digits, one ticket number,
    and a unique violation that kept a captured payment from ever confirming."""
    first = uuid.uuid4()
    second = uuid.UUID(bytes=first.bytes[:5] + uuid.uuid4().bytes[5:], version=4)
    assert first.hex[:10] == second.hex[:10] and first != second
    assert ticket_number(first) != ticket_number(second)


def test_every_random_bit_used_counts() -> None:
    """Each of the 72 bits taken changes the number; the version and variant bits are not among them."""
    booking = uuid.uuid4()
    taken = [*range(0, 48), *range(72, 96)]  # bytes 0-5 and 9-11
    numbers = {ticket_number(uuid.UUID(int=booking.int ^ (1 << (127 - bit)))) for bit in taken}
    assert len(numbers) == len(taken) and ticket_number(booking) not in numbers
