"""Rate limits of the ingress: a token bucket per source address and one per link or webhook.

The ingress is the one door open to the world, so a flood of guesses at tokens, or of
deliveries to one webhook, must not become a flood of work. Each request takes one unit from
the bucket of its source address (remote TCP peers only: on the Unix socket or from a
loopback address every request comes from the local reverse proxy or the operator, and a
per-client limit belongs in that proxy, where the client's address is known) and one from the bucket of its
key (the ``/r/<token>`` or ``/h/<sid>`` it names). An empty bucket is a 429 with a
``Retry-After`` naming the seconds until a unit is back. Buckets refill continuously; the number
of buckets kept is capped (the least recently used go first), so the limiter's memory is bounded
whatever a caller sends. Both limits are settings (``--webhook-rate-per-address``,
``--webhook-rate-per-key``), read by :meth:`IngressRateLimits.from_config`.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from typing import TYPE_CHECKING

import attrs

from hero_logic.kernel import SETTINGS, parse_rate_limit

if TYPE_CHECKING:
    from collections.abc import Callable

    from hero_logic.kernel import Config

__all__ = ["Bucket", "IngressRateLimits", "RateLimiter", "is_local", "retry_after"]

MAX_BUCKETS = 10_000


@attrs.frozen
class Bucket:
    """A refill rate (units per second) and a burst (the most units held at once)."""

    per_second: float
    burst: int

    def __attrs_post_init__(self) -> None:
        if not (self.per_second > 0 and self.burst >= 1):
            msg = f"a rate limit needs per_second > 0 and burst >= 1, got {self!r}"
            raise ValueError(msg)


@attrs.frozen
class IngressRateLimits:
    """The ingress's two limits. The defaults leave room for a busy webhook sender (a burst of
    300, then 50 a second per webhook) and for a person on an approval page, while a guesser of
    tokens from one remote address gets 100 tries and then 20 a second."""

    per_address: Bucket = Bucket(per_second=20.0, burst=100)
    per_key: Bucket = Bucket(per_second=50.0, burst=300)

    @classmethod
    def from_config(cls, config: Config) -> IngressRateLimits:
        """The limits ``config`` sets (``webhook_rate_per_address``, ``webhook_rate_per_key``);
        a malformed one is a ConfigError naming its setting, as at start-up."""
        return cls(per_address=_bucket(config, "webhook_rate_per_address"), per_key=_bucket(config, "webhook_rate_per_key"))


def _bucket(config: Config, attr: str) -> Bucket:
    setting = next(s for s in SETTINGS if s.attr == attr)
    per_second, burst = parse_rate_limit(getattr(config, attr), setting=f"{setting.env} / {setting.flag}", example=setting.default)
    return Bucket(per_second=per_second, burst=burst)


class RateLimiter:
    """Token buckets by key, refilled by ``clock`` (seconds); at most ``max_buckets`` kept."""

    def __init__(self, bucket: Bucket, clock: Callable[[], float], *, max_buckets: int = MAX_BUCKETS) -> None:
        self.bucket = bucket
        self.clock = clock
        self.max_buckets = max_buckets
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (units, at)

    def take(self, key: str) -> float:
        """Take one unit for ``key``: 0.0 when taken, else the seconds until one is back."""
        now = self.clock()
        units, at = self._levels.pop(key, (float(self.bucket.burst), now))
        units = min(float(self.bucket.burst), units + (now - at) * self.bucket.per_second)
        wait = 0.0
        if units >= 1.0:
            units -= 1.0
        else:
            wait = (1.0 - units) / self.bucket.per_second
        self._levels[key] = (units, now)
        while len(self._levels) > self.max_buckets:
            self._levels.popitem(last=False)
        return wait


def is_local(address: str) -> bool:
    """Whether ``address`` is a loopback address (the reverse proxy or the operator)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def retry_after(wait: float) -> str:
    """The ``Retry-After`` value for a wait in seconds (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))
