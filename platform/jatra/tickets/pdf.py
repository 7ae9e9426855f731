"""The e-ticket as a one-page A5 PDF with its signed QR code, written directly.

A ticket is a handful of text lines and one QR code, so the PDF is built by hand (PDF 1.4: the standard
Helvetica fonts, which every reader has, and the QR as a stencil mask of one bit a module, drawn at a whole
number of points a module). The QR is encoded by zxing-cpp (C++) with a fixed mask. Measured with
`make bench-tickets`: see bench/results/HISTORY.md; the reportlab and segno version took 28 ms a ticket,
17 ms of it segno's pure-Python encoder.

Text is encoded as WinAnsi (cp1252), the standard fonts' encoding; a character outside it prints as "?".
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import zxingcpp

from jatra.tickets.helvetica import width

#: A5 portrait, in points
WIDTH, HEIGHT = 419.53, 595.28
#: Each QR module is a whole number of points, at most QR_MODULE_PT (and the code at most QR_ROOM points
#: square): at 72 dpi, 3 whole pixels a module, all of one size, for the codes of 1-4 passengers.
QR_MODULE_PT = 3
QR_ROOM = 310
QR_BOTTOM = 60 + HEIGHT % 1
#: Bytes of a QR buffer (0 dark, 255 light) as the bits of a stencil mask (0 painted, 1 left alone)
_BITS = bytes.maketrans(b"\x00\xff", b"01")
FOOTER = "Verify offline with the Jatra ticket public key"
#: the footer's left edge, centred by Helvetica's metrics
FOOTER_X = (WIDTH - width(FOOTER, 7)) / 2
#: the left and right margins, in points
MARGIN = 36
#: The QR's mask pattern, fixed. An encoder that picks it (ISO/IEC 18004's penalty over all eight) spent
#: 1.0 of zxing-cpp's 1.1 ms on it; any mask decodes alike (ISO's encoder is to pick the lowest, so this
#: departs from its procedure, not its format). On 200 ticket codes of 1-4 passengers mask 2's penalty was
#: 3.7 % over the lowest at the median, 14 % at the 95th percentile (bench/results/qr-mask/).
QR_MASK = 2


def _text(s: str) -> bytes:
    """A PDF literal string: WinAnsi bytes with the three special characters escaped."""
    raw = s.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _fitted(s: str, size: float) -> float:
    """The font size at which ``s`` fits between the margins: ``size``, or smaller for a long line (a
    passenger's name may be 60 characters)."""
    room = WIDTH - 2 * MARGIN
    wide = width(s, size)
    return size if wide <= room else math.floor(size * room / wide * 10) / 10


def _line(font: str, size: float, x: float, y: float, s: str) -> bytes:
    return b"BT /%s %g Tf %.2f %.2f Td %s Tj ET\n" % (font.encode(), size, x, y, _text(s))


def _stream(entries: bytes, data: bytes) -> bytes:
    """A stream object's body: its dictionary (``entries`` and the exact /Length) and its bytes."""
    return b"<< %s/Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)


def _qr(text: str) -> tuple[bytes, int]:
    """The QR code with its quiet zone as a PDF stencil mask (1 bit a module, dark painted), and its side in
    modules. A stencil, not a grey image: poppler's Splash renderer (pdftoppm) smooths an image it scales up
    less than fourfold, whatever its /Interpolate says (isImageInterpolationRequired), and at 72 dpi zbar
    read 0.6 % of the codes drawn that way as no code (25 of 4,000) and 2.1 % of 4-passenger ones at 3 px a
    module; Splash draws a stencil sharp. (poppler's Cairo renderer smooths both: at 72 dpi zbar missed 211 of
    300 four-passenger stencils, and 229 of 300 codes drawn the old way; zxing-cpp read every one, and at 96
    dpi zbar did too.) zxing-cpp's buffer is one byte a module (its type stubs do not say it is a buffer)."""
    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M", data_mask=QR_MASK)
    pixels = memoryview(code.to_image(scale=1, add_quiet_zones=True)).tobytes()  # type: ignore[arg-type]
    side = math.isqrt(len(pixels))
    padded = -(-side // 8) * 8  # each row to whole bytes
    bits = pixels.translate(_BITS)
    rows = b"".join(bits[at : at + side].ljust(padded, b"1") for at in range(0, len(bits), side))
    data = int(rows, 2).to_bytes(len(rows) // 8, "big")
    image = b"/Type /XObject /Subtype /Image /Width %d /Height %d /ImageMask true" % (side, side)
    return _stream(image + b" /BitsPerComponent 1 ", data), side


def _lines(ticket: dict[str, Any]) -> list[str]:
    departs = dt.datetime.fromisoformat(ticket["departs_at"]).strftime("%d %b %Y, %H:%M")
    lines = [
        f"Ticket {ticket['ticket_number']}",
        f"Train {ticket['train_number']} {ticket['train_name']}",
        f"{ticket['from']} -> {ticket['to']}, departs {departs} (local time)",
        f"Class {ticket['class']}, seats {', '.join(ticket['seat_labels'])}",
        f"Fare paid: {ticket['amount']} BDT",
    ]
    return lines + [f"Passenger: {p['name']} ({p['age']}, {p['gender']})" for p in ticket["passengers"]]


def _document(title: str, content: bytes, qr: bytes) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents 4 0 R /Resources"
        b" << /Font << /F1 5 0 R /F2 6 0 R >> /XObject << /QR 8 0 R >> >> >>" % (WIDTH, HEIGHT),
        _stream(b"", content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title %s /Producer (Jatra) >>" % _text(title),
        qr,
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%EOF\n" % xref
    return bytes(out)


def render(ticket: dict[str, Any], qr: str) -> bytes:
    content = [_line("F2", 18, MARGIN, HEIGHT - 50, "Jatra e-ticket")]
    lines = enumerate(_lines(ticket))
    content += [_line("F1", _fitted(s, 11), MARGIN, HEIGHT - 80 - i * 16, s) for i, s in lines]
    image, side = _qr(qr)
    size = side * min(QR_MODULE_PT, QR_ROOM // side)
    # its lower edge 60 points up, rounded so that its upper one is a whole number of points from the top
    content.append(b"q %d 0 0 %d %d %.2f cm /QR Do Q\n" % (size, size, (WIDTH - size) // 2, QR_BOTTOM))
    content.append(_line("F1", 7, FOOTER_X, 48, FOOTER))
    title = f"Jatra e-ticket {ticket['ticket_number']}"
    return _document(title, b"".join(content), image)
