"""API keys (admin keys only) and short-lived tokens minted from the client's own key."""

from __future__ import annotations

from typing import Any

from .._base_client import APIRequest, drop_none
from .._pagination import AsyncPager, SyncPager
from ..types import ApiKey, CreatedKey, Token
from ._resource import AsyncAPIResource, SyncAPIResource


def _create_request(name: str, admin: bool) -> APIRequest:
    return APIRequest("POST", "/v1/keys", json={"name": name, "admin": admin}, use_api_key=True)


def _list_request(page_size: int | None) -> APIRequest:
    return APIRequest("GET", "/v1/keys", params=drop_none({"limit": page_size}), use_api_key=True)


def _revoke_request(key_id: str) -> APIRequest:
    return APIRequest("DELETE", f"/v1/keys/{key_id}", use_api_key=True)


def _token_request(expires_in: int | None) -> APIRequest:
    return APIRequest("POST", "/v1/tokens", json=drop_none({"expiresIn": expires_in}), use_api_key=True)


def _parse_key(item: Any) -> ApiKey:
    return ApiKey.model_validate(item)


class Keys(SyncAPIResource):
    def create(self, name: str, *, admin: bool = False) -> CreatedKey:
        """Creates a key; ``secret`` is in this answer only. Needs an admin key (not a token)."""
        return CreatedKey.model_validate(self._client._call(_create_request(name, admin)))

    def list(self, *, page_size: int | None = None) -> SyncPager[ApiKey]:
        """Active keys, newest first, without secrets."""
        return SyncPager(self._client, _list_request(page_size), _parse_key)

    def revoke(self, key_id: str) -> None:
        """Revokes a key: it and every token minted from it stop working at once."""
        self._client._call(_revoke_request(key_id))


class AsyncKeys(AsyncAPIResource):
    async def create(self, name: str, *, admin: bool = False) -> CreatedKey:
        return CreatedKey.model_validate(await self._client._call(_create_request(name, admin)))

    def list(self, *, page_size: int | None = None) -> AsyncPager[ApiKey]:
        return AsyncPager(self._client, _list_request(page_size), _parse_key)

    async def revoke(self, key_id: str) -> None:
        await self._client._call(_revoke_request(key_id))


class Tokens(SyncAPIResource):
    def create(self, *, expires_in: int | None = None) -> Token:
        """Mints a token that acts as this client's key for ``expires_in`` seconds (1..86400, default 3600)."""
        return Token.model_validate(self._client._call(_token_request(expires_in)))


class AsyncTokens(AsyncAPIResource):
    async def create(self, *, expires_in: int | None = None) -> Token:
        return Token.model_validate(await self._client._call(_token_request(expires_in)))
