"""The e-ticket's PDF: one A5 page whose QR a phone reads back, on a screen and on paper, with its mask."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from jatra.tickets import pdf, signing
from jatra.tickets.view import qr_payload
from tests.fixtures.tickets import TICKET_VIEW

KEY = Ed25519PrivateKey.generate()


def _run(*command: str | Path) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _page(document: bytes, tmp_path: Path, dpi: int) -> Path:
    (tmp_path / "ticket.pdf").write_bytes(document)
    _run("pdftoppm", "-png", "-r", str(dpi), tmp_path / "ticket.pdf", tmp_path / "page")
    return tmp_path / "page-1.png"


@pytest.mark.parametrize("dpi", [72, 200, 600])  # a screen, the tickets' integration test, a printer
def test_the_printed_qr_reads_back_as_the_signed_code(tmp_path: Path, dpi: int) -> None:
    code = signing.sign(KEY, qr_payload(TICKET_VIEW))
    page = _page(pdf.render(TICKET_VIEW, code), tmp_path, dpi)
    assert _run("zbarimg", "-q", "--raw", page).strip() == code
    with Image.open(page) as image:
        read = zxingcpp.read_barcode(image)
    assert read is not None and read.text == code
    # zxing-cpp takes options it does not know without a word, so check the mask was applied
    assert read.extra["DataMask"] == pdf.QR_MASK and read.extra["ECLevel"] == "M"


def test_one_a5_page_with_the_ticket_in_it(tmp_path: Path) -> None:
    document = pdf.render(TICKET_VIEW, signing.sign(KEY, qr_payload(TICKET_VIEW)))
    (tmp_path / "ticket.pdf").write_bytes(document)
    info = _run("pdfinfo", tmp_path / "ticket.pdf")
    assert "Pages:           1" in info and "419.53 x 595.28 pts" in info
    assert f"Title:           Jatra e-ticket {TICKET_VIEW['ticket_number']}" in info
    text = _run("pdftotext", tmp_path / "ticket.pdf", "-")
    assert TICKET_VIEW["ticket_number"] in text and "Verify offline" in text
