"""The fare rule: rate per km with a minimum, plus VAT on AC classes, rounded up to whole taka."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class FareRule:
    seat_class: str
    rate_per_km: Decimal
    minimum_fare: int
    vat_percent: int

    def fare(self, distance_km: int) -> int:
        """Fare in BDT for one seat over ``distance_km``."""
        if distance_km <= 0:
            raise ValueError("distance must be positive")
        base = max(Decimal(self.minimum_fare), self.rate_per_km * distance_km)
        with_vat = base * (100 + self.vat_percent) / 100
        return math.ceil(with_vat)
