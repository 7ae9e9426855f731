"""Login by OTP through the dev mailbox, token rotation, reuse detection, logout, rate limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy.exc
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text

from jatra.app import create_app
from jatra.auth import repository
from jatra.auth.otp import OtpStore, Verdict
from jatra.infra.channels import MailboxChannel
from jatra.infra.db import create_engine
from jatra.infra.revocations import KEY_PREFIX, REVOKED_SET
from jatra.infra.secrets import jwt_secret
from jatra.settings import Settings
from jatra.stack.manager import Stack
from jatra.stack.procs import free_port
from tests.integration.helpers import a_journey, eventually, free_seats

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]


ROOT = Path(__file__).resolve().parents[2]


def new_phone() -> str:
    return f"+8801{secrets.choice('3456789')}{secrets.randbelow(10**8):08d}"


def last_code(settings: Settings, phone: str) -> str:
    body = MailboxChannel(settings.mailbox_dir).read(phone)[-1]["body"]
    return body.split("code is ")[1][:6]


async def login(client: Client, settings: Settings, phone: str) -> dict[str, str]:
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    response = await client.post(
        "/api/v1/auth/token", json={"phone": phone, "otp": last_code(settings, phone)}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def can_hold(client: Client, access: str) -> int:
    """Status of a (deliberately invalid) hold request: 422 means the token was accepted."""
    body = {"journey_id": 2**31 - 1, "from": "DA", "to": "CGP", "seats": [1]}  # no such journey
    return (
        await client.post("/api/v1/holds", json=body, headers={"Authorization": f"Bearer {access}"})
    ).status_code


async def test_otp_login_gives_working_tokens(client: Client, settings: Settings) -> None:
    phone = new_phone()
    otp = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert otp.status_code == 202 and otp.json() == {"sent": True, "expires_in": 300}
    code = last_code(settings, phone)
    assert len(code) == 6 and code.isdigit()
    tokens = (await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})).json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900 and tokens["refresh_token"]
    assert await can_hold(client, tokens["access_token"]) == 422
    # A code works once.
    again = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})
    assert again.status_code == 401


async def test_a_code_spent_on_a_login_postgres_failed_works_on_the_retry(
    client: Client, settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres fails after the code was verified: the answer is 503 "retry", and the retry with the same
    code logs in (it was spent, and answered 401 "no live code"), the code given back with the life and
    the wrong attempts it had, not new ones."""
    phone = new_phone()
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    code = last_code(settings, phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(2):
        answer = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": wrong})
        assert answer.status_code == 401
    key = f"jatra:auth:otp:{{{phone}}}"
    await redis.expire(key, 100)  # as if 200 of its 300 s had gone
    upsert = repository.upsert_user

    async def down_once(*args: Any) -> Any:
        monkeypatch.setattr(repository, "upsert_user", upsert)
        raise sqlalchemy.exc.OperationalError("INSERT INTO users", {}, ConnectionRefusedError())

    monkeypatch.setattr(repository, "upsert_user", down_once)
    failed = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})
    assert failed.status_code == 503 and failed.headers["retry-after"], failed.text
    assert await redis.hget(key, "n") == b"2" and 0 < await redis.ttl(key) <= 100
    retried = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})
    assert retried.status_code == 200, retried.text
    assert (await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})).status_code == 401


async def test_a_code_given_back_does_not_come_back_over_a_newer_one(
    client: Client, settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the login with a good code fails on our side, the passenger asks for a new code and types it
    wrong until it is burnt: the old code is not given back in its place (the phone has no live code)."""
    phone = new_phone()
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    code = last_code(settings, phone)
    upsert = repository.upsert_user

    async def down_once(*args: Any) -> Any:
        monkeypatch.setattr(repository, "upsert_user", upsert)
        # on the app's event loop (the test client runs it in a thread of its own): a client of its own
        async with Redis.from_url(settings.redis) as own:
            store = OtpStore(own, jwt_secret(settings), settings.otp_ttl_s, settings.otp_max_attempts)
            newer = await store.issue(phone)
            wrong = f"{(int(newer) + 1) % 1_000_000:06d}"
            verdicts = [await store.verify(phone, wrong) for _ in range(settings.otp_max_attempts)]
        assert verdicts[-1] is Verdict.EXHAUSTED
        raise sqlalchemy.exc.OperationalError("INSERT INTO users", {}, ConnectionRefusedError())

    monkeypatch.setattr(repository, "upsert_user", down_once)
    failed = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})
    assert failed.status_code == 503, failed.text
    assert not await redis.exists(f"jatra:auth:otp:{{{phone}}}")
    retried = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": code})
    assert retried.status_code == 401 and "no live code" in retried.json()["detail"], retried.text


#: the verify scripts of the versions before this one (git show d37488d~1 and d37488d:
#: platform/jatra/auth/otp.py): during a rolling deploy their pods verify codes beside this version's
EARLIER_VERIFY = {
    "deleted on spending": """
    local stored = redis.call('HGET', KEYS[1], 'h')
    if not stored then return {-1} end
    if stored == ARGV[1] then
        local left = redis.call('PTTL', KEYS[1])
        local attempts = redis.call('HGET', KEYS[1], 'n') or '0'
        redis.call('DEL', KEYS[1])
        return {1, left, attempts}
    end
    local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
    if attempts >= tonumber(ARGV[2]) then
        redis.call('DEL', KEYS[1])
        return {-2}
    end
    return {0}
    """,
    "marked spent beside its hash": """
    local stored = redis.call('HGET', KEYS[1], 'h')
    if not stored or redis.call('HEXISTS', KEYS[1], 's') == 1 then return -1 end
    if stored == ARGV[1] then
        redis.call('HSET', KEYS[1], 's', 1)
        return 1
    end
    local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
    if attempts >= tonumber(ARGV[2]) then
        redis.call('DEL', KEYS[1])
        return -2
    end
    return 0
    """,
}


@pytest.mark.parametrize("earlier", list(EARLIER_VERIFY))
async def test_a_code_spent_here_is_refused_by_the_pods_of_earlier_versions(
    settings: Settings, redis: Redis, earlier: str
) -> None:
    """A rolling deploy: a code spent on a pod of this version cannot log in again on a pod still running
    an earlier version, and one spent there cannot log in again here. A code given back after a failed
    login works again on either."""
    store = OtpStore(redis, jwt_secret(settings), settings.otp_ttl_s, settings.otp_max_attempts)
    key_of = "jatra:auth:otp:{{{}}}".format

    async def verify_earlier(phone: str, code: str) -> int:
        digest = hmac.new(jwt_secret(settings).encode(), f"{phone}:{code}".encode(), hashlib.sha256)
        answer = await redis.eval(  # type: ignore[misc]
            EARLIER_VERIFY[earlier], 1, key_of(phone), digest.hexdigest(), settings.otp_max_attempts
        )
        return int(answer[0] if isinstance(answer, list) else answer)

    phone = new_phone()
    code = await store.issue(phone)
    assert await store.verify(phone, code) is Verdict.OK
    assert await verify_earlier(phone, code) == -1  # spent here: no live code there
    await store.give_back(phone, code)  # the login failed on our side
    assert await verify_earlier(phone, code) == 1
    assert await store.verify(phone, code) is Verdict.EXPIRED  # spent there: not again here
    other = new_phone()
    code = await store.issue(other)
    assert await verify_earlier(other, code) == 1
    assert await store.verify(other, code) is Verdict.EXPIRED


async def test_a_real_login_can_hold_seats(client: Client, settings: Settings) -> None:
    tokens = await login(client, settings, new_phone())
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 1)
    body = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": seats}
    response = await client.post(
        "/api/v1/holds", json=body, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 201


async def test_five_wrong_codes_burn_the_otp(client: Client, settings: Settings) -> None:
    phone = new_phone()
    await client.post("/api/v1/auth/otp", json={"phone": phone})
    good = last_code(settings, phone)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(settings.otp_max_attempts):
        response = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": wrong})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
    burnt = await client.post("/api/v1/auth/token", json={"phone": phone, "otp": good})
    assert burnt.status_code == 401 and "request a new one" in burnt.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(client: Client, settings: Settings) -> None:
    first = await login(client, settings, new_phone())
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert await can_hold(client, second["access_token"]) == 422
    # The old refresh token again: theft is assumed, and every token of this login dies.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    dead = await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert dead.status_code == 401
    assert await can_hold(client, second["access_token"]) == 401


async def test_logout_revokes_at_once(client: Client, settings: Settings, redis: Redis) -> None:
    tokens = await login(client, settings, new_phone())
    assert await can_hold(client, tokens["access_token"]) == 422
    assert (
        await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 204
    # for the other processes too (this one knows at once): the key they ask while not subscribed, the
    # set they load when they subscribe (test_revocations covers the publication)
    family = jwt.decode(tokens["access_token"], options={"verify_signature": False})["extras"]["fam"]
    assert await redis.exists(KEY_PREFIX + family) == 1
    assert await redis.zscore(REVOKED_SET, family) is not None
    assert await can_hold(client, tokens["access_token"]) == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


@pytest.mark.parametrize("phone", ["01711", "+8801211111111", "+447700900123", "not a phone"])
async def test_bad_phone_numbers_are_named(client: Client, phone: str) -> None:
    response = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "phone"


async def test_local_format_is_accepted(client: Client, settings: Settings) -> None:
    local = "01" + new_phone()[5:]
    assert (await client.post("/api/v1/auth/otp", json={"phone": local})).status_code == 202
    assert MailboxChannel(settings.mailbox_dir).read("+88" + local)


async def test_a_number_in_bengali_digits_is_the_same_number(client: Client, settings: Settings) -> None:
    """A phone's keyboard may type Bengali digits: the same account and the same OTP allowance, not one of
    their own (``\\d`` took them as they were)."""
    phone = new_phone()
    bengali = phone[:6] + phone[6:].translate(str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯"))  # +8801X then ১২...
    assert (await client.post("/api/v1/auth/otp", json={"phone": bengali})).status_code == 202
    assert MailboxChannel(settings.mailbox_dir).read(phone)


async def test_otp_requests_are_rate_limited_per_phone(client: Client, settings: Settings) -> None:
    phone = new_phone()
    statuses = [(await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code for _ in range(6)]
    assert statuses == [202] * settings.otp_per_phone_per_hour + [429]
    limited = await client.post("/api/v1/auth/otp", json={"phone": phone})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.headers["content-type"].startswith("application/problem+json")


async def test_otp_requests_are_rate_limited_per_client_address(settings: Settings) -> None:
    strict = dataclasses.replace(settings, otp_per_ip_per_minute=3)
    async with AsyncTestClient(app=create_app(["all"], strict)) as client:
        statuses = [
            (await client.post("/api/v1/auth/otp", json={"phone": new_phone()})).status_code
            for _ in range(40)
        ]
        limited = await client.post("/api/v1/auth/otp", json={"phone": new_phone()})
    assert 429 in statuses
    assert statuses.count(202) <= strict.otp_per_ip_per_minute  # earlier requests only lower it
    assert limited.status_code == 429 and limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["retry-after"]) <= 60, limited.headers


async def test_the_otp_is_stored_only_as_an_hmac_for_300_seconds(
    client: Client, settings: Settings, redis: Redis
) -> None:
    phone = new_phone()
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    code = last_code(settings, phone)
    key = f"jatra:auth:otp:{{{phone}}}"
    stored = await redis.hgetall(key)
    expected = hmac.new(jwt_secret(settings).encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()
    assert stored[b"h"].decode() == expected and code.encode() not in b"".join(stored.values())
    assert 290 < await redis.ttl(key) <= 300


async def test_a_refresh_token_lives_seven_days(client: Client, settings: Settings) -> None:
    tokens = await login(client, settings, new_phone())
    engine = create_engine(settings, admin=True)
    async with engine.connect() as conn:
        digest = hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()  # stored hashed, never as is
        query = "SELECT expires_at - now() FROM refresh_tokens WHERE token_hash = :h"
        left = (await conn.execute(text(query), {"h": digest})).scalar_one()
    await engine.dispose()
    assert dt.timedelta(days=7) - dt.timedelta(minutes=1) < left <= dt.timedelta(days=7)


async def test_the_login_limit_counts_the_client_a_trusted_proxy_names(stack: Stack, tmp_path: Path) -> None:
    """Behind the gateway or the ingress controller every request comes from the proxy: the per-address
    limit counts the client its X-Forwarded-For names, from the proxies JATRA_FORWARDED_ALLOW_IPS trusts,
    and only from those (else it would be one limit for every passenger, or a header a client sets)."""
    port = free_port()
    env = {**os.environ, "JATRA_OTP_PER_IP_PER_MINUTE": "3", "JATRA_FORWARDED_ALLOW_IPS": "127.0.0.2"}
    server = _serve_auth(port, env, tmp_path / "auth.log")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as probe:
            await eventually(lambda: _answers(probe), 30, "the auth service's /health")

        async def statuses(proxy: str, forwarded: list[str]) -> list[int]:
            transport = httpx.AsyncHTTPTransport(local_address=proxy)  # loopback has every 127.x address
            async with httpx.AsyncClient(base_url=base, transport=transport, timeout=10) as http:
                return [
                    (await http.post("/api/v1/auth/otp", json={"phone": new_phone()},
                                     headers={"X-Forwarded-For": f})).status_code
                    for f in forwarded
                ]  # fmt: skip

        # the trusted proxy: five passengers, five limits of 3
        assert await statuses("127.0.0.2", [f"10.0.0.{n}" for n in range(5)]) == [202] * 5
        # the same passenger through it: one limit
        assert (await statuses("127.0.0.2", ["10.0.1.1"] * 4))[-1] == 429
        # a proxy not trusted (or a client setting the header itself): its own address, one limit for all
        assert 429 in await statuses("127.0.0.3", [f"10.0.2.{n}" for n in range(5)])
    finally:
        server.terminate()
        server.wait(20)


def _serve_auth(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jatra", "serve", "auth", "--port", str(port)],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def _answers(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health")).status_code == 200
    except httpx.HTTPError:
        return False
