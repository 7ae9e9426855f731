"""The e-ticket's PDF: one A5 page whose QR a phone reads back, on a screen and on paper, with its mask."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from jatra.tickets import pdf, signing
from jatra.tickets.view import qr_payload
from tests.fixtures.tickets import TICKET_VIEW

#: a fixed key, so the QR is the same in every run (Ed25519 signs deterministically): how reliably codes of
#: every key read back was measured over thousands (bench/results/HISTORY.md, "The e-ticket's QR")
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _run(*command: str | Path) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _poppler(*command: str | Path) -> str:
    """A poppler tool's output: it repairs a broken xref or stream length quietly but for a line on stderr."""
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stderr == "", done.stderr
    return done.stdout


def _page(document: bytes, tmp_path: Path, dpi: int, renderer: str = "pdftoppm") -> Path:
    """The page as a PNG, drawn by poppler's Splash renderer (pdftoppm) or its Cairo one (pdftocairo)."""
    (tmp_path / "ticket.pdf").write_bytes(document)
    _poppler(renderer, "-png", "-singlefile", "-r", str(dpi), tmp_path / "ticket.pdf", tmp_path / "page")
    return tmp_path / "page.png"


# a screen, the tickets' integration test, a printer; and Cairo, which smooths the QR at 3 px a module: zbar
# then misses most codes of four passengers (211 of 300), zxing-cpp none: Cairo's page is read by zxing only
@pytest.mark.parametrize(
    ("renderer", "dpi"), [("pdftoppm", 72), ("pdftoppm", 200), ("pdftoppm", 600), ("pdftocairo", 72)]
)
def test_the_printed_qr_reads_back_as_the_signed_code(tmp_path: Path, renderer: str, dpi: int) -> None:
    code = signing.sign(KEY, qr_payload(TICKET_VIEW))
    page = _page(pdf.render(TICKET_VIEW, code), tmp_path, dpi, renderer)
    if renderer == "pdftoppm":
        assert _run("zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", page).strip() == code
    with Image.open(page) as image:
        read = zxingcpp.read_barcode(image)
    assert read is not None and read.text == code
    # zxing-cpp takes options it does not know without a word, so check the mask was applied
    assert read.extra["DataMask"] == pdf.QR_MASK and read.extra["ECLevel"] == "M"


def test_every_module_is_three_whole_pixels_at_72_dpi(tmp_path: Path) -> None:
    """What the scans above rely on. As a grey image at 2.6 px a module, poppler blurred the code and zbar
    read 0.6 % of codes as none; now the page is pixel for pixel the code's modules, with no grey."""
    code = signing.sign(KEY, qr_payload(TICKET_VIEW))
    page = _page(pdf.render(TICKET_VIEW, code), tmp_path, 72)
    qr = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.QRCode, ec_level="M", data_mask=pdf.QR_MASK)
    expected = Image.fromarray(qr.to_image(scale=3, add_quiet_zones=False))  # type: ignore[arg-type]
    with Image.open(page) as image:
        # below the text, above the footer: only the QR is dark there
        band = image.convert("L").crop((0, 220, image.width, image.height - 58))
    drawn = band.crop(band.point(lambda v: 255 if v < 128 else 0).getbbox())
    assert drawn.size == expected.size
    assert drawn.tobytes() == expected.tobytes()


def test_a_long_name_is_printed_whole_inside_the_page(tmp_path: Path) -> None:
    """A name of 60 characters (the most the API takes) in a wide letter: the line shrinks to the margins."""
    name = "Mohammad Abdul Wahhab Muhammad Mahmud Mohiuddin Waliullah MW"
    assert len(name) == 60
    ticket = TICKET_VIEW | {
        "passengers": [*TICKET_VIEW["passengers"], {"name": name, "age": 40, "gender": "other"}]
    }
    page = _page(pdf.render(ticket, signing.sign(KEY, qr_payload(ticket))), tmp_path, 72)
    with Image.open(page) as image:
        text = image.convert("L").crop((0, 0, image.width, 240))  # the lines, above the QR
    right = text.crop((text.width - pdf.MARGIN + 2, 0, text.width, text.height))
    assert right.getextrema()[0] == 255  # nothing printed in the right margin
    assert f"Passenger: {name} (40, other)" in _poppler("pdftotext", tmp_path / "ticket.pdf", "-")


def test_one_a5_page_with_the_ticket_in_it(tmp_path: Path) -> None:
    document = pdf.render(TICKET_VIEW, signing.sign(KEY, qr_payload(TICKET_VIEW)))
    (tmp_path / "ticket.pdf").write_bytes(document)
    info = _poppler("pdfinfo", tmp_path / "ticket.pdf")
    assert "Pages:           1" in info and "419.53 x 595.28 pts" in info
    assert f"Title:           Jatra e-ticket {TICKET_VIEW['ticket_number']}" in info
    text = _poppler("pdftotext", tmp_path / "ticket.pdf", "-")
    assert TICKET_VIEW["ticket_number"] in text and "Verify offline" in text


def test_every_offset_and_stream_length_is_exact() -> None:
    """What a strict reader relies on and poppler forgives: the xref's offsets, each stream's /Length."""
    document = pdf.render(TICKET_VIEW, signing.sign(KEY, qr_payload(TICKET_VIEW)))
    xref = int(document.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    table = document[xref:].split(b"trailer", 1)[0].split(b"\n")
    assert table[0] == b"xref" and table[1] == b"0 9"  # the free entry and eight objects
    for number, entry in enumerate(table[3:11], start=1):
        offset = int(entry.split()[0])
        assert document[offset:].startswith(b"%d 0 obj\n" % number)
    streams = 0
    for head in re.finditer(rb"/Length (\d+)[^>]*>>\nstream\n", document):
        end = head.end() + int(head.group(1))
        assert document[end : end + len(b"\nendstream")] == b"\nendstream"
        streams += 1
    assert streams == 2  # the page's content and the QR's image
