"""Everything the sync and async clients share: request building, auth, idempotency keys, the
retry decision and turning responses into models or errors. The two clients in ``_client.py``
differ only in how they send, sleep and close.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterable, Callable, Iterable, Mapping, TypeVar

import httpx
from pydantic import BaseModel

from ._config import ClientConfig, OptimizationHints, resolve_config
from ._exceptions import FaaSError, NetworkError, error_from_body
from ._retry import RetryPolicy, parse_retry_after
from ._session import DEFAULT_TOKEN_EXPIRES_IN, SessionTokens

__all__ = ["APIRequest", "BaseClient", "metadata_params"]

ModelT = TypeVar("ModelT", bound=BaseModel)
USER_AGENT = "faas-sdk-python/0.1.0"


@dataclass(frozen=True)
class APIRequest:
    """One logical API call. Frozen so a retry sends exactly what the first attempt sent."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    #: Raw body. A factory rather than an iterator so every retry can start the body afresh.
    content: Callable[[], bytes | Iterable[bytes] | AsyncIterable[bytes]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    idempotency_key: str | None = None
    #: For streams: the caller reads the body; retries stop once headers have arrived.
    stream: bool = False
    #: Authenticate with the API key itself even when session tokens are on (minting tokens).
    use_api_key: bool = False
    #: False: send no Idempotency-Key, so a POST is never retried. For raw bodies whose repeat
    #: would do the work twice (stdin data, image imports): the engine's idempotency store skips
    #: streamed bodies, so a key would not make the retry safe. Same rule as TypeScript's
    #: ``idempotencyKey: null``.
    idempotent: bool = True


def metadata_params(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """``metadata={"team": "infra"}`` -> ``metadata[team]=infra`` (the API's deepObject filter)."""
    return {f"metadata[{key}]": value for key, value in (metadata or {}).items()}


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class BaseClient:
    """Configuration plus the pure halves of every request."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        endpoint: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        token_provider: Callable[[], Any] | None = None,
        use_session_tokens: bool = False,
        token_expires_in: int | None = None,
        optimization_hints: OptimizationHints | None = None,
    ) -> None:
        #: How the engine may save work; see :class:`OptimizationHints`.
        self.optimization_hints = optimization_hints or OptimizationHints()
        self._config: ClientConfig = resolve_config(
            api_key=api_key, endpoint=endpoint, timeout=timeout, max_retries=max_retries
        )
        self._retry = RetryPolicy(self._config.max_retries)
        #: Called once when the engine answers 401: returns a fresh key or token to use from then on
        #: (the async client also accepts a coroutine function).
        self._token_provider = token_provider
        #: Short-lived tokens minted from the API key, when ``use_session_tokens`` is on.
        self._session: SessionTokens | None = (
            SessionTokens(token_expires_in or DEFAULT_TOKEN_EXPIRES_IN) if use_session_tokens else None
        )

    @property
    def endpoint(self) -> str:
        return self._config.endpoint

    @property
    def api_key(self) -> str:
        return self._config.api_key

    @property
    def timeout(self) -> float:
        return self._config.timeout

    # ------------------------------------------------------------------ building
    def _prepare(self, request: APIRequest) -> APIRequest:
        """Gives each logical POST its idempotency key once, so every retry reuses it."""
        if request.method == "POST" and request.idempotency_key is None and request.idempotent:
            return replace(request, idempotency_key=f"faas-py-{uuid.uuid4().hex}")
        return request

    def _headers(self, request: APIRequest, auth_key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {auth_key or self._config.api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream" if request.stream else "application/json",
        }
        if request.idempotency_key is not None:
            headers["Idempotency-Key"] = request.idempotency_key
        headers.update(request.headers)
        return headers

    def _token_request(self) -> APIRequest:
        assert self._session is not None
        return APIRequest("POST", "/v1/tokens", json={"expiresIn": self._session.expires_in}, use_api_key=True)

    def _set_api_key(self, key: str) -> None:
        self._config = replace(self._config, api_key=key)

    @staticmethod
    def _refresh_kind(error: FaaSError, request: APIRequest, refreshed: bool) -> str | None:
        """What to do about a 401 once: ``session`` (mint a new token), ``provider`` or nothing."""
        if refreshed or error.status_code != 401:
            return None
        return "session" if error.code == "token_expired" and not request.use_api_key else "provider"

    def _build(self, http: httpx.Client | httpx.AsyncClient, request: APIRequest, auth_key: str | None = None) -> httpx.Request:
        content = request.content() if request.content is not None else None
        has_json = request.json is not None
        return http.build_request(
            request.method,
            self._config.endpoint + request.path,
            params=_encode_params(request.params),
            json=request.json if has_json else None,
            content=content,  # sync client: bytes or an iterable; async: bytes or an async iterable
            headers=self._headers(request, auth_key),
            timeout=request.timeout if request.timeout is not None else self._config.timeout,
        )

    # ------------------------------------------------------------------ retry decisions
    def _delay_after_response(self, request: APIRequest, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying after an error status, or None to give up."""
        error = self._status_error(response)
        return self._retry.decide(
            method=request.method, idempotency_key=request.idempotency_key, attempt=attempt,
            status=response.status_code, code=error.code, details=error.details,
            retry_after=response.headers.get("retry-after"),
        )

    def _delay_after_transport_error(self, request: APIRequest, attempt: int) -> float | None:
        return self._retry.decide(method=request.method, idempotency_key=request.idempotency_key, attempt=attempt, status=None)

    # ------------------------------------------------------------------ responses
    @staticmethod
    def _network_error(request: APIRequest, exc: Exception) -> NetworkError:
        return NetworkError(
            f"{request.method} {request.path}: {type(exc).__name__}: {exc}", code="network_error"
        )

    @staticmethod
    def _status_error(response: httpx.Response) -> FaaSError:
        """Call after the body has been read."""
        try:
            body: object = response.json()
        except ValueError:
            body = None
        return error_from_body(
            body,
            response.status_code,
            request_id=response.headers.get("x-request-id"),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _encode_params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Booleans as the API spells them (``true``), None dropped."""
    if not params:
        return None
    encoded: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        encoded[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return encoded
