"""The one retry policy — the same in both SDKs (docs/sdk-behaviour.md; the table both SDKs'
tests check is tests/conformance/retry-policy.json).

What is retried: connection errors, 408, 429 and every 5xx, and a 409 ``conflict`` whose
``details.key`` is our own Idempotency-Key (a retry that overtook the first attempt, which the
engine is still working on) — but only for calls that are safe to repeat: GET/PUT/DELETE/HEAD, or a
POST that carries an ``Idempotency-Key`` (the SDK sends the same key on every attempt, so the engine
replays the first answer instead of redoing the work). A stream that has started is never retried.

How long to wait: ``Retry-After`` when the engine sent one (whole seconds or an HTTP date; one
beyond 60 s is not waited for, the error is raised instead), else exponential backoff from 0.5 s
doubling up to 8 s, with up to 25 % jitter so a crowd of clients does not retry in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
#: A Retry-After longer than this is not worth blocking a caller for; the error is raised instead.
MAX_RETRY_AFTER = 60.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def is_retryable_status(status: int, code: str | None, details: Any, idempotency_key: str | None, attempt: int) -> bool:
    """Whether an error answer is transient (see the module docstring for the 409 case)."""
    if status in (408, 429) or status >= 500:
        return True
    if status == 409 and code == "conflict" and attempt > 0 and idempotency_key is not None:
        return isinstance(details, dict) and details.get("key") == idempotency_key
    return False


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int

    def is_repeatable(self, method: str, idempotency_key: str | None) -> bool:
        return method.upper() in IDEMPOTENT_METHODS or idempotency_key is not None

    def should_retry_status(
        self,
        attempt: int,
        status: int,
        retry_after: float | None,
        *,
        code: str | None = None,
        details: Any = None,
        idempotency_key: str | None = None,
    ) -> bool:
        if attempt >= self.max_retries or not is_retryable_status(status, code, details, idempotency_key, attempt):
            return False
        return retry_after is None or retry_after <= MAX_RETRY_AFTER

    def decide(
        self,
        *,
        method: str,
        idempotency_key: str | None,
        attempt: int,
        status: int | None,
        code: str | None = None,
        details: Any = None,
        retry_after: str | None = None,
    ) -> float | None:
        """The whole decision after a failed attempt (``status`` None: the engine was not reached):
        seconds to wait before trying again, or None to give up. ``retry_after`` is the raw header.
        TypeScript's twin is ``retryDecision``; both are checked against
        tests/conformance/retry-policy.json."""
        if not self.is_repeatable(method, idempotency_key):
            return None
        if status is None:
            return self.delay(attempt) if self.should_retry_connection_error(attempt) else None
        seconds = parse_retry_after(retry_after)
        if not self.should_retry_status(attempt, status, seconds, code=code, details=details, idempotency_key=idempotency_key):
            return None
        return self.delay(attempt, seconds)

    def should_retry_connection_error(self, attempt: int) -> bool:
        return attempt < self.max_retries

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``attempt + 1`` (attempt counts from 0)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        base: float = min(MAX_DELAY, INITIAL_DELAY * 2.0 ** float(attempt))
        return base * (1 - 0.25 * random.random())


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait: ``Retry-After`` is whole (or fractional) seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - time())
    return seconds if seconds >= 0 else None
