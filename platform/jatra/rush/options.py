"""What a rush run does: arrival rate, duration, passengers, popularity skew, provider faults."""

from __future__ import annotations

from dataclasses import dataclass, field

#: the routes passengers want on Eid, most popular first (popularity then follows a Zipf law)
ROUTES: tuple[tuple[str, str], ...] = (
    ("DA", "CGP"), ("DA", "SYT"), ("DA", "RJS"), ("DA", "KLN"), ("DA", "RGP"), ("DA", "PCG"),
    ("CGP", "DA"), ("DA", "CXB"), ("DA", "MYN"), ("SYT", "DA"), ("RJS", "KLN"), ("DA", "NOK"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Options:
    base_url: str
    provider_url: str
    rate: float = 20.0  # passengers arriving per second (open loop)
    duration_s: float = 60.0
    passengers: int = 300
    skew: float = 1.2  # Zipf exponent over routes, days and trains: higher = more contention
    days: int = 3  # travel dates: N days from first_day on, the nearest most wanted
    first_day: int = 1  # days from today to the first travel date (a fresh window = an unsold inventory)
    abandon: float = 0.1  # share of passengers who hold seats and walk away
    #: seat maps a passenger looks at before leaving without a hold: one whose train shows no free seat
    #: on their segment, or who loses the seats to another passenger (409), looks again (the next most
    #: wanted train, or a fresh map), as a real passenger picks another train. 1: leave at once, as
    #: every rush before the twenty-first stop did (their sets are not comparable with later ones)
    tries: int = 3
    retry_same_key: float = 0.1  # share who send their booking twice with the same Idempotency-Key
    max_in_flight: int = 5000  # arrivals beyond this are counted as dropped (the generator is saturated)
    source_ips: int = 64  # passengers come from 127.0.1.1 .. 127.0.1.N (per-IP limits stay realistic)
    drain_s: float = 60.0  # after the last arrival, how long accepted bookings may take to settle
    faults: dict[str, object] = field(default_factory=dict)
    #: how a passenger learns the booking's outcome: "wait" asks once (a long poll, ?wait=20),
    #: "poll" asks every 0.25 s (the way before long polls, kept to measure one against the other)
    outcome: str = "wait"
    seed: int = 7

    def __post_init__(self) -> None:
        if self.tries < 1:
            raise ValueError(f"tries is the seat maps a passenger looks at, at least 1, not {self.tries}")
