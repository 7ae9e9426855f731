"""How wide a line is in Helvetica, from Adobe's metrics (Helvetica.afm, the 14 standard fonts' file).

Only what the e-ticket needs to fit a line to its page: the widths of the printable ASCII characters, and for
any other WinAnsi character a width none of Helvetica's glyphs beyond ASCII exceeds (1,000, an em), so a
line is never wider than measured.
"""

from __future__ import annotations

#: advance widths of the characters 32-126, in thousandths of the font size (WinAnsi: 39 is quotesingle,
#: 96 grave)
ASCII = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
)  # fmt: skip
OTHER = 1000
#: by WinAnsi byte: the control characters print nothing, every byte above 126 is counted as an em
_BY_BYTE = (0,) * 32 + ASCII + (OTHER,) * 129


def width(text: str, size: float) -> float:
    """The line's width in points at ``size``, as the PDF prints it (WinAnsi; other characters as "?")."""
    return sum(map(_BY_BYTE.__getitem__, text.encode("cp1252", errors="replace"))) * size / 1000
