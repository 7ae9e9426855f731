"""The simulated provider's ledger SQL for a charge: one statement, asked in one exchange (jatra.infra.pg).

A charge was an ORM session: BEGIN, the insert, COMMIT, BEGIN, the row read back, ROLLBACK: six exchanges
through PgBouncer to the Postgres the platform shares with this simulator on one machine (in production
the provider is someone else's). Now the insert and the read of a key charged before are one statement in
autocommit. The rare race, another charge with the same key committing while this statement runs, leaves
it no row to see (the conflict waits for that commit, the statement's snapshot is older): it reads again.
"""

from __future__ import annotations

from dataclasses import dataclass

from jatra.infra.pg import Statements

#: the key's first charge, or the row of the charge that had it first (``created`` tells which)
CHARGE = """
    WITH new AS (
        INSERT INTO provider_charges (idempotency_key, amount, method, status)
        VALUES (%(key)s, %(amount)s, %(method)s, %(status)s)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING idempotency_key, amount, method, status
    )
    SELECT idempotency_key, amount, method, status, true AS created FROM new
    UNION ALL
    SELECT idempotency_key, amount, method, status, false AS created FROM provider_charges
    WHERE idempotency_key = %(key)s AND NOT EXISTS (SELECT 1 FROM new)
    """

READ = """
    SELECT idempotency_key, amount, method, status, false AS created
    FROM provider_charges WHERE idempotency_key = %(key)s
    """


@dataclass(frozen=True, slots=True)
class ChargeRow:
    idempotency_key: str
    amount: int
    method: str
    status: str
    #: this statement took the money (or declined): the key had no charge before
    created: bool


async def charge_once(pg: Statements, key: str, amount: int, method: str, status: str) -> ChargeRow:
    """Record ``status`` for ``key`` unless the key has a charge already; the key's charge either way."""
    params = {"key": key, "amount": amount, "method": method, "status": status}
    row = await pg.one(CHARGE, params, ChargeRow)
    if row is None:  # the race above: the other charge has committed by now
        row = await pg.one(READ, {"key": key}, ChargeRow)
    if row is None:  # nothing deletes a ledger row
        raise LookupError(f"no charge with key {key} after a conflict on it")
    return row
