"""The e-ticket as a one-page PDF with its signed QR code (reportlab)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A5
from reportlab.pdfgen import canvas


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
    widget = QrCodeWidget(qr)
    x0, y0, x1, y1 = widget.getBounds()
    size = 200
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, (width - size) / 2, 60)
    pdf.setFont("Helvetica", 7)
    pdf.drawCentredString(width / 2, 48, "Verify offline with the Jatra ticket public key")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
