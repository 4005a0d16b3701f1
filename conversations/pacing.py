"""The pace of business-initiated sends per number, shared by every worker: one Redis script reserves the next
send slot (a generic cell rate algorithm with a burst of one), so sends are spaced 1/rate apart across all
workers together and no one-second window ever holds more than `rate` of them.

A token bucket whose burst equals the rate would let nearly twice the rate through a sliding second (a full
bucket at the end of one second, refilled during the next); spacing the slots avoids that. The slack keeps a
little air between slots, so that a sender that wakes a millisecond late does not crowd the next one into the
same second as the previous ones.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings

SLACK = (
    1.02  # slots 2% further apart than 1/rate: jitter of the senders never adds up to rate + 1 in a second
)

# KEYS[1]: the number's key. ARGV[1]: the interval in microseconds. Returns {the reserved slot, now}, both in
# microseconds of the server's clock, so every worker shares one.
RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now_us)
redis.call('SET', KEYS[1], slot + interval, 'PX', math.ceil(interval / 1000) + 60000)
return {slot, now_us}
"""

# Push the number's next slot back (Meta said 130429: too fast): no one sends on it before then.
HOLD = """
local now = redis.call('TIME')
local until_us = tonumber(now[1]) * 1000000 + tonumber(now[2]) + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > tat then redis.call('SET', KEYS[1], until_us, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 60000) end
return 0
"""

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


def _key(number_id: int) -> str:
    return f"pace:number:{number_id}"


def reserve_slot(number_id: int, rate: float) -> tuple[float, float]:
    """Reserve the number's next send slot at `rate` per second: (the slot, now), seconds of Redis's clock."""
    interval_us = int(1_000_000 * SLACK / rate)
    answer: Any = _redis().eval(RESERVE, 1, _key(number_id), str(interval_us))
    slot, now = (int(part) for part in answer)
    return slot / 1_000_000, now / 1_000_000


def reserve(number_id: int, rate: float) -> float:
    """Reserve the number's next send slot; the seconds to wait before sending in it."""
    slot, now = reserve_slot(number_id, rate)
    return max(0.0, slot - now)


def wait_for_slot(number_id: int, rate: float) -> None:
    """Block until this worker's reserved slot comes."""
    delay = reserve(number_id, rate)
    if delay > 0:
        time.sleep(delay)


def hold(number_id: int, seconds: float) -> None:
    """No sends on the number for `seconds` (every worker), after Meta answered that we went too fast."""
    _redis().eval(HOLD, 1, _key(number_id), str(int(seconds * 1_000_000)))
