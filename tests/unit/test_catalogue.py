"""Conventions of the metric catalogue: names, units, bounded labels."""

from __future__ import annotations

import re

from jatra.telemetry.catalogue import CATALOGUE

UNBOUNDED = {
    "user",
    "user_id",
    "seat",
    "seat_id",
    "booking",
    "booking_id",
    "hold_id",
    "phone",
    "trace_id",
    "path_raw",
}


def test_names_follow_the_convention() -> None:
    assert CATALOGUE
    for name, spec in CATALOGUE.items():
        assert re.fullmatch(r"jatra_[a-z]+(_[a-z0-9]+)+", name), name
        if spec.kind == "counter":
            assert name.endswith("_total"), name
        if spec.kind == "histogram" and "duration" in name:
            assert name.endswith("_seconds"), name
        assert spec.help.strip(), name


def test_labels_are_bounded() -> None:
    for spec in CATALOGUE.values():
        assert not set(spec.labels) & UNBOUNDED, spec.name
