"""The ingress's rate limits (issue 12): a token bucket per TCP source address and one per link
or webhook; an empty bucket is a 429 with a Retry-After. The buckets are tested on a fake clock;
the app through an ASGI client (which gives a TCP peer address) over a service that knows no
links, and end to end over the real ingress socket in test_ingress.py and over TCP in
test_ingress_tcp.py. Both limits are settings, refused at start-up when malformed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hero_logic.ingress import IngressApp
from hero_logic.ingress._rate import Bucket, IngressRateLimits, RateLimiter
from hero_logic.kernel import NotFound

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(Bucket(per_second=2.0, burst=3), clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # half a second to the next unit
    assert limiter.take("b") == 0.0  # keys are independent
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.now += 60
    assert [limiter.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.5)]  # never over the burst


def test_the_limiter_keeps_a_bounded_number_of_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(Bucket(per_second=1.0, burst=1), clock, max_buckets=50)
    for n in range(10_000):
        limiter.take(f"guess-{n}")
    assert len(limiter._levels) == 50
    assert limiter.take("guess-9999") > 0  # the recent ones are still limited


@pytest.mark.parametrize(("per_second", "burst"), [(0.0, 5), (-1.0, 5), (1.0, 0)])
def test_a_bucket_that_could_never_give_a_unit_is_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="per_second > 0 and burst >= 1"):
        Bucket(per_second=per_second, burst=burst)


class _NoLinks:
    """A service that knows no link: every /r/<token> is a 404 (what a token guesser sees)."""

    class resume_links:  # the attribute the app reads
        @staticmethod
        def check(token: str) -> Any:
            raise NotFound(f"no open question has the link {token!r}")


async def _get_many(app: IngressApp, paths: list[str], client: tuple[str, int]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as web:
        return [await web.get(path) for path in paths]


async def test_a_token_guesser_from_one_address_is_slowed_to_429s() -> None:
    limits = IngressRateLimits(per_address=Bucket(per_second=0.01, burst=5), per_key=Bucket(per_second=100.0, burst=100))
    app = IngressApp(_NoLinks(), max_body=1024, rate_limits=limits)  # type: ignore[arg-type]
    answers = await _get_many(app, [f"/r/guess{n}" for n in range(8)], ("203.0.113.9", 4000))
    assert [a.status_code for a in answers] == [404] * 5 + [429] * 3
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert "too many requests" in answers[-1].text
    other = await _get_many(app, ["/r/guess0"], ("198.51.100.7", 4000))
    assert other[0].status_code == 404  # another address is not held back
    limits = IngressRateLimits(per_address=Bucket(per_second=0.01, burst=2), per_key=Bucket(per_second=0.01, burst=3))
    tight = IngressApp(_NoLinks(), max_body=1024, rate_limits=limits)  # type: ignore[arg-type]
    flood = await _get_many(tight, ["/r/shared"] * 10, ("203.0.113.66", 4000))
    assert [a.status_code for a in flood] == [404, 404] + [429] * 8
    # the flooder's refused requests took nothing of the link's own allowance
    assert (await _get_many(tight, ["/r/shared"], ("198.51.100.1", 4000)))[0].status_code == 404
    local = await _get_many(app, [f"/r/guess{n}" for n in range(8)], ("127.0.0.1", 4000))
    assert {a.status_code for a in local} == {404}  # the local proxy is limited by key only


async def test_one_link_hammered_from_many_addresses_is_limited_per_key() -> None:
    limits = IngressRateLimits(per_address=Bucket(per_second=100.0, burst=100), per_key=Bucket(per_second=0.01, burst=3))
    app = IngressApp(_NoLinks(), max_body=1024, rate_limits=limits)  # type: ignore[arg-type]
    codes = [(await _get_many(app, ["/r/same"], (f"192.0.2.{n}", 4000)))[0].status_code for n in range(5)]
    assert codes == [404, 404, 404, 429, 429]
    assert (await _get_many(app, ["/r/other"], ("192.0.2.99", 4000)))[0].status_code == 404


# -- the limits are settings --------------------------------------------------------------------


def test_the_limits_are_settings_by_flag_or_environment() -> None:
    """``RATE/s,burst=N`` (or ``/min``, ``/h``) per address and per key, flag over environment."""
    from hero_logic.kernel import Config

    env = {"PATH_ROOT": "/r", "HERO_LOGIC_WEBHOOK_RATE_PER_ADDRESS": "2/s,burst=7", "HERO_LOGIC_WEBHOOK_RATE_PER_KEY": "30/min, burst=4"}
    limits = IngressRateLimits.from_config(Config.load({"webhook_rate_per_address": "0.5/s,burst=9"}, env))
    assert limits == IngressRateLimits(per_address=Bucket(per_second=0.5, burst=9), per_key=Bucket(per_second=0.5, burst=4))
    assert IngressRateLimits.from_config(Config.load({}, {"PATH_ROOT": "/r"})) == IngressRateLimits()
    hourly = Config.load({}, {**env, "HERO_LOGIC_WEBHOOK_RATE_PER_KEY": "36/h,burst=1"})
    assert IngressRateLimits.from_config(hourly).per_key == Bucket(per_second=0.01, burst=1)


@pytest.mark.parametrize("value", ["fast", "20", "20/s", "burst=5", "0/s,burst=5", "-1/s,burst=5", "20/s,burst=0", "20/day,burst=5", "20/s,burst=1.5", "20/s,burst=5,extra=1", "nan/s,burst=5"])
def test_a_bad_limit_is_refused_naming_the_setting_the_value_and_the_form(value: str) -> None:
    from hero_logic.kernel import Config, ConfigError

    with pytest.raises(ConfigError) as info:
        Config.load({}, {"PATH_ROOT": "/r", "HERO_LOGIC_WEBHOOK_RATE_PER_KEY": value})
    message = str(info.value)
    assert "HERO_LOGIC_WEBHOOK_RATE_PER_KEY / --webhook-rate-per-key" in message
    assert repr(value) in message
    assert "e.g. 50/s,burst=300" in message


async def test_a_service_given_a_bad_limit_does_not_start_and_says_why_in_one_line(root: Path) -> None:
    import os
    import sys

    import trio

    env = {**os.environ, "PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub", "HERO_LOGIC_WEBHOOK_RATE_PER_ADDRESS": "lots"}
    with trio.fail_after(30):
        result = await trio.run_process([sys.executable, "-m", "hero_logic.cli", "serve"], env=env, capture_stdout=True, capture_stderr=True, check=False)
    err = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in err
    assert "HERO_LOGIC_WEBHOOK_RATE_PER_ADDRESS / --webhook-rate-per-address must be RATE/s,burst=N" in err
    assert "'lots'" in err
