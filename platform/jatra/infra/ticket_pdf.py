"""The e-ticket as a one-page PDF with its signed QR code (reportlab)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel
from reportlab.lib.pagesizes import A5
from reportlab.pdfgen import canvas


def _draw_qr(pdf: canvas.Canvas, text: str, x: float, y: float, size: float) -> None:
    """Encode once and draw each run of dark modules as one rectangle (the widget encodes twice and
    draws every module as its own shape: 10x slower, measured)."""
    code = QRCode(None, QRErrorCorrectLevel.M)  # None: the smallest version that fits
    code.addData(text)
    code.make()
    count = code.getModuleCount()  # type: ignore[no-untyped-call]
    quiet = 4
    cell = size / (count + 2 * quiet)
    for row in range(count):
        col = 0
        while col < count:
            if not code.isDark(row, col):  # type: ignore[no-untyped-call]
                col += 1
                continue
            start = col
            while col < count and code.isDark(row, col):  # type: ignore[no-untyped-call]
                col += 1
            top = y + size - (quiet + row + 1) * cell
            pdf.rect(x + (quiet + start) * cell, top, (col - start) * cell, cell, stroke=0, fill=1)


def render(ticket: dict[str, Any], qr: str) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A5)
    width, height = A5
    pdf.setTitle(f"Jatra e-ticket {ticket['ticket_number']}")
    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawString(36, height - 50, "Jatra e-ticket")
    pdf.setFont("Helvetica", 11)
    lines = [
        f"Ticket {ticket['ticket_number']}",
        f"Train {ticket['train_number']} {ticket['train_name']}",
        f"{ticket['from']} -> {ticket['to']}, departs "
        f"{dt.datetime.fromisoformat(ticket['departs_at']).strftime('%d %b %Y, %H:%M')} (local time)",
        f"Class {ticket['class']}, seats {', '.join(ticket['seat_labels'])}",
        f"Fare paid: {ticket['amount']} BDT",
    ]
    lines += [f"Passenger: {p['name']} ({p['age']}, {p['gender']})" for p in ticket["passengers"]]
    for i, line in enumerate(lines):
        pdf.drawString(36, height - 80 - i * 16, line)
    _draw_qr(pdf, qr, x=(width - 200) / 2, y=60, size=200)
    pdf.setFont("Helvetica", 7)
    pdf.drawCentredString(width / 2, 48, "Verify offline with the Jatra ticket public key")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
