"""The one retry policy.

What is retried: connection errors and 408/429/5xx answers, but only for calls that are
safe to repeat — GET/PUT/DELETE, or a POST that carries an ``Idempotency-Key`` (the SDK sends the
same key on every attempt, so the engine replays the first answer instead of redoing the work).
A stream that has started is never retried: the caller already saw part of it.

How long to wait: ``Retry-After`` when the engine sent one (capped), else exponential backoff from
0.5 s doubling up to 8 s, with up to 25 % jitter so a crowd of clients does not retry in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
#: A Retry-After longer than this is not worth blocking a caller for; the error is raised instead.
MAX_RETRY_AFTER = 60.0
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int

    def is_repeatable(self, method: str, idempotency_key: str | None) -> bool:
        return method.upper() in IDEMPOTENT_METHODS or idempotency_key is not None

    def should_retry_status(self, attempt: int, status: int, retry_after: float | None) -> bool:
        if attempt >= self.max_retries or status not in RETRYABLE_STATUS:
            return False
        return retry_after is None or retry_after <= MAX_RETRY_AFTER

    def should_retry_connection_error(self, attempt: int) -> bool:
        return attempt < self.max_retries

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``attempt + 1`` (attempt counts from 0)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        base: float = min(MAX_DELAY, INITIAL_DELAY * 2.0 ** float(attempt))
        return base * (1 - 0.25 * random.random())


def parse_retry_after(value: str | None) -> float | None:
    """Whole or fractional seconds; HTTP-date forms are not sent by the engine and are ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
