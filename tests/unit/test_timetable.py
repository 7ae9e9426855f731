from __future__ import annotations

import itertools

from jatra.catalog.timetable import load


def test_the_timetable_is_big_enough_and_real() -> None:
    tt = load()
    assert tt.lines >= 10
    assert len(tt.trains) >= 40
    names = {t.name for t in tt.trains}
    for real in ["Subarna Express", "Sonar Bangla Express", "Parabat Express", "Silk City Express"]:
        assert real in names
    codes = {s.code for s in tt.stations}
    assert {"DA", "CGP", "SYT", "RJS", "KLN"} <= codes
    assert len({t.number for t in tt.trains}) == len(tt.trains)


def test_every_train_runs_forward_in_time_and_distance() -> None:
    for train in load().trains:
        stops = train.stops
        assert len(stops) >= 2, train.number
        assert stops[0].arrive_min is None and stops[-1].depart_min is None
        clock = -1
        for a, b in itertools.pairwise(stops):
            assert b.distance_km > a.distance_km, train.number
            assert b.arrive_min is not None and b.arrive_min > (a.depart_min or 0) >= clock
            clock = a.depart_min or 0
        assert [s.seq for s in stops] == list(range(len(stops)))


def test_up_and_down_trains_cover_the_same_distance() -> None:
    by_number = {t.number: t for t in load().trains}
    subarna_down, subarna_up = by_number[701], by_number[702]
    assert subarna_down.stops[-1].distance_km == subarna_up.stops[-1].distance_km == 321
    assert subarna_down.stops[0].station == subarna_up.stops[-1].station == "DA"


def test_coaches_have_distinct_codes_and_known_classes() -> None:
    tt = load()
    classes = {c.rule.seat_class for c in tt.classes}
    for train in tt.trains:
        codes = [c.code for c in train.coaches]
        assert len(codes) == len(set(codes))
        assert {c.seat_class for c in train.coaches} <= classes
