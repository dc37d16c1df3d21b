"""Session tokens (the seed's "session token refresh mechanism").

With ``use_session_tokens=True`` the client sends short-lived tokens minted from its API key
(``POST /v1/tokens``) instead of the key itself, so the long-lived secret crosses the wire once per
token lifetime. A token is refreshed before it expires (at 80 % of its life, and at least 30 s
before the end when it lives longer than that), and once more if the engine still answers
``401 token_expired``. This module holds only the bookkeeping; the clients do the minting.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable, Mapping

#: Default lifetime of a session token, seconds (the engine's default too).
DEFAULT_TOKEN_EXPIRES_IN = 3600


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class SessionTokens:
    def __init__(self, expires_in: int, clock: Callable[[], float] = time.time) -> None:
        self.expires_in = expires_in
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0

    def current(self) -> str | None:
        """The token to send, or None when a new one must be minted first."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def started(self) -> float:
        return self._clock()

    def store(self, minted: Mapping[str, Any], started: float) -> str:
        life = max(0.0, _parse_time(str(minted["expiresAt"])) - started)
        self._token = str(minted["token"])
        self._refresh_at = started + max(life * 0.8, life - 30.0)
        return self._token

    def invalidate(self) -> None:
        self._token = None
