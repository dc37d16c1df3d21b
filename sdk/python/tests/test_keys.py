"""client.keys / client.tokens and session tokens against a real engine (the same behaviour as
sdk/typescript/test/keys.test.ts): a non-admin key sees only its own records, session tokens are
minted from the key and refreshed before expiry and once on ``401 token_expired``, and revoked keys
and expired tokens raise their classes."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Iterator

import httpx
import pytest

from faas_sdk import (
    AsyncFaaSClient,
    CreatedKey,
    FaaSClient,
    ForbiddenError,
    KeyRevokedError,
    Snapshot,
    SnapshotNotFoundError,
    TokenExpiredError,
    UnauthorizedError,
)

from .conftest import Engine


def _seconds_until(stamp: str) -> float:
    return max(0.0, datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - time.time())


@pytest.fixture(scope="module")
def tenant_key(client: FaaSClient) -> Iterator[CreatedKey]:
    key = client.keys.create("sdk-py-tenant")
    yield key
    try:
        client.keys.revoke(key.id)
    except Exception:
        pass


def _recording(log: list[tuple[str, str]]) -> httpx.Client:
    def record(request: httpx.Request) -> None:
        log.append((f"{request.method} {request.url.path}", request.headers.get("authorization", "")[7:]))

    return httpx.Client(event_hooks={"request": [record]})


def test_create_and_list_keys(client: FaaSClient, tenant_key: CreatedKey) -> None:
    assert tenant_key.id.startswith("key_")
    assert tenant_key.secret.startswith("faas_")
    assert tenant_key.admin is False
    listed = [k for k in client.keys.list() if k.id == tenant_key.id]
    assert len(listed) == 1 and not hasattr(listed[0], "secret")


def test_non_admin_key_is_scoped(engine: Engine, tenant_key: CreatedKey, base_snapshot: Snapshot) -> None:
    with FaaSClient(tenant_key.secret, endpoint=engine.endpoint) as tenant:
        with pytest.raises(SnapshotNotFoundError):
            tenant.snapshots.get(base_snapshot.id)
        assert base_snapshot.id not in [s.id for s in tenant.snapshots.list()]
        with pytest.raises(ForbiddenError):
            tenant.keys.create("escalate", admin=True)
        with pytest.raises(ForbiddenError):
            list(tenant.keys.list())


def test_session_tokens_are_minted_and_refreshed_before_expiry(engine: Engine, tenant_key: CreatedKey) -> None:
    log: list[tuple[str, str]] = []
    with FaaSClient(
        tenant_key.secret, endpoint=engine.endpoint, use_session_tokens=True, token_expires_in=2, http_client=_recording(log)
    ) as session:
        list(session.instances.list())
        list(session.instances.list())
        mints = lambda: [bearer for path, bearer in log if path == "POST /v1/tokens"]  # noqa: E731
        assert mints() == [tenant_key.secret]  # minted once, with the key…
        calls = [bearer for path, bearer in log if path == "GET /v1/instances"]
        assert all(b.startswith("faastok.") for b in calls)  # …which is not sent otherwise
        # Past the refresh point (80 % of the token's life) the next call mints first…
        assert session._session is not None
        time.sleep(max(0.0, session._session._refresh_at - time.time()) + 0.1)
        list(session.instances.list())
        assert len(mints()) == 2
        assert [b for p, b in log if p == "GET /v1/instances"][-1] != calls[0]
        # …while the old token still works: it was refreshed before it expired.
        with FaaSClient(calls[0], endpoint=engine.endpoint, max_retries=0) as old:
            list(old.instances.list())


def test_session_retries_once_on_token_expired(engine: Engine, tenant_key: CreatedKey) -> None:
    log: list[tuple[str, str]] = []
    with FaaSClient(tenant_key.secret, endpoint=engine.endpoint, use_session_tokens=True, http_client=_recording(log)) as session:
        minted = session.tokens.create(expires_in=1)
        stale = minted.token
        time.sleep(_seconds_until(minted.expires_at) + 0.3)
        # A token that has expired but that the client believes is fresh (clock skew).
        assert session._session is not None
        session._session._token = stale
        session._session._refresh_at = float("inf")
        log.clear()
        list(session.instances.list())
        assert [p for p, _ in log] == ["GET /v1/instances", "POST /v1/tokens", "GET /v1/instances"]
        assert log[0][1] == stale and log[1][1] == tenant_key.secret
        assert log[2][1].startswith("faastok.") and log[2][1] != stale


def test_expired_token_and_token_minting(engine: Engine, tenant_key: CreatedKey) -> None:
    with FaaSClient(tenant_key.secret, endpoint=engine.endpoint) as tenant:
        token = tenant.tokens.create(expires_in=2)
    assert token.key_id == tenant_key.id
    with FaaSClient(token.token, endpoint=engine.endpoint, max_retries=0) as via_token:
        list(via_token.instances.list())
        with pytest.raises(ForbiddenError):
            via_token.tokens.create()
        time.sleep(_seconds_until(token.expires_at) + 0.3)
        with pytest.raises(TokenExpiredError) as raised:
            list(via_token.instances.list())
        assert isinstance(raised.value, UnauthorizedError) and raised.value.code == "token_expired"


def test_token_provider_is_called_once_on_401(engine: Engine, tenant_key: CreatedKey) -> None:
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return tenant_key.secret

    with FaaSClient("faas_wrong", endpoint=engine.endpoint, token_provider=provider) as client:
        list(client.instances.list())
    assert calls == [1]


def test_revoked_key(client: FaaSClient, engine: Engine) -> None:
    victim = client.keys.create("sdk-py-revoked")
    with FaaSClient(victim.secret, endpoint=engine.endpoint, use_session_tokens=True) as session:
        list(session.instances.list())
        client.keys.revoke(victim.id)
        with pytest.raises(KeyRevokedError):
            list(session.instances.list())
    with FaaSClient(victim.secret, endpoint=engine.endpoint) as plain:
        with pytest.raises(KeyRevokedError):
            list(plain.instances.list())


async def test_async_session_tokens(engine: Engine, tenant_key: CreatedKey) -> None:
    async with AsyncFaaSClient(tenant_key.secret, endpoint=engine.endpoint, use_session_tokens=True, token_expires_in=60) as session:
        assert [i async for i in session.instances.list()] is not None
        assert session._session is not None and session._session.current() is not None
        token = await session.tokens.create(expires_in=30)
        assert token.key_id == tenant_key.id
        with pytest.raises(ForbiddenError):
            await session.keys.create("nope")
