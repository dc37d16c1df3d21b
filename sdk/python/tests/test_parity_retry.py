"""The retry policy against the shared table tests/conformance/retry-policy.json, which the
TypeScript SDK's test/parity-retry.test.ts checks too: both SDKs retry the same answers after the
same waits (no engine needed)."""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from faas_sdk._retry import RetryPolicy

TABLE = json.loads((Path(__file__).resolve().parents[3] / "tests/conformance/retry-policy.json").read_text())


def _header(value: str | None) -> str | None:
    """'past-date' / 'future-date-3s' become HTTP dates; anything else is sent as written."""
    if value == "past-date":
        return formatdate(time.time() - 3600, usegmt=True)
    ahead = re.fullmatch(r"future-date-(\d+)s", value or "")
    return formatdate(time.time() + int(ahead.group(1)), usegmt=True) if ahead else value


@pytest.mark.parametrize("case", TABLE["cases"], ids=[c["name"] for c in TABLE["cases"]])
def test_retry_policy(case: dict[str, Any]) -> None:
    own = "key-own"
    key = (own if case.get("idempotencyKey") else None) if case["method"] == "POST" else None
    details = {"key": own if case["detailsKey"] == "own" else "key-other"} if "detailsKey" in case else None
    policy = RetryPolicy(case.get("maxRetries", 2))
    for random_value in (0.0, 0.999):
        with mock.patch("faas_sdk._retry.random.random", return_value=random_value):
            seconds = policy.decide(
                method=case["method"], idempotency_key=key, attempt=case["attempt"],
                status=None if case.get("network") else case["status"], code=case.get("code"), details=details,
                retry_after=_header(case.get("retryAfter")),
            )
        assert (seconds is not None) == case["retry"], seconds
        if seconds is None:
            continue
        if "delaySeconds" in case:
            assert seconds == pytest.approx(case["delaySeconds"])
        if "delaySecondsAtMost" in case:
            assert 0 <= seconds <= case["delaySecondsAtMost"]
        if "backoffBase" in case:
            assert 0.75 * case["backoffBase"] - 0.001 <= seconds <= case["backoffBase"]
