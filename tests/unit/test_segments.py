"""Segment arithmetic: a leg bitmask per segment, and overlap by AND, checked against interval logic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jatra.inventory.segments import MAX_LEGS, Segment, overlaps


@st.composite
def segments(draw: st.DrawFn, stops: int = MAX_LEGS) -> Segment:
    start = draw(st.integers(0, stops - 1))
    end = draw(st.integers(start + 1, stops))
    return Segment(start, end)


@given(segments())
def test_mask_has_exactly_the_legs_of_the_segment(seg: Segment) -> None:
    assert [leg for leg in range(MAX_LEGS) if seg.mask >> leg & 1] == list(seg.legs)
    assert seg.mask.bit_count() == seg.end - seg.start
    assert seg.mask < 2**31  # fits Redis Lua's 32-bit bit library


@given(segments(), segments())
def test_masks_overlap_exactly_when_the_journeys_share_a_leg(a: Segment, b: Segment) -> None:
    shared_leg = bool(set(a.legs) & set(b.legs))
    assert overlaps(a.mask, b.mask) == shared_leg == a.overlaps(b)


@st.composite
def consecutive(draw: st.DrawFn) -> tuple[Segment, Segment]:
    """Two segments where the second starts at the stop where the first ends (every draw applies)."""
    seg = draw(segments(stops=MAX_LEGS - 1))
    return seg, Segment(seg.end, draw(st.integers(seg.end + 1, MAX_LEGS)))


@given(consecutive())
def test_consecutive_segments_never_overlap(pair: tuple[Segment, Segment]) -> None:
    seg, following = pair
    assert not overlaps(seg.mask, following.mask)
    assert Segment(seg.start, following.end).mask == seg.mask | following.mask


@pytest.mark.parametrize(("start", "end"), [(2, 2), (3, 1), (-1, 2), (0, MAX_LEGS + 1)])
def test_invalid_segments_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="invalid segment"):
        Segment(start, end)


def test_dhaka_bhairab_then_bhairab_sylhet() -> None:
    # Parabat Express stops: DA 0, ABR 1, NRS 2, BHB 3, BBA 4, AKH 5, SHY 6, SMG 7, KLR 8, SYT 9
    dhaka_bhairab, bhairab_sylhet, narsingdi_sylhet = Segment(0, 3), Segment(3, 9), Segment(2, 9)
    assert not overlaps(dhaka_bhairab.mask, bhairab_sylhet.mask)
    assert overlaps(dhaka_bhairab.mask, narsingdi_sylhet.mask)
