"""Lists that page transparently: ``for x in client.instances.list()`` / ``async for``.

Pages are fetched lazily, one request per page, following ``nextCursor`` until it is null. The
request is rebuilt for each page with the cursor added; everything else stays as given.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generic, Iterator, TypeVar

from ._base_client import APIRequest

if TYPE_CHECKING:
    from ._client import AsyncFaaSClient, FaaSClient

ItemT = TypeVar("ItemT")


def _page_request(request: APIRequest, cursor: str | None) -> APIRequest:
    if cursor is None:
        return request
    return dataclasses.replace(request, params={**(request.params or {}), "cursor": cursor})


def _next_cursor(page: Any) -> str | None:
    cursor = page.get("nextCursor") if isinstance(page, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


class SyncPager(Generic[ItemT]):
    def __init__(self, client: FaaSClient, request: APIRequest, parse: Callable[[Any], ItemT]) -> None:
        self._client = client
        self._request = request
        self._parse = parse

    def __iter__(self) -> Iterator[ItemT]:
        cursor: str | None = None
        while True:
            page = self._client._call(_page_request(self._request, cursor))
            for item in page.get("data", []):
                yield self._parse(item)
            cursor = _next_cursor(page)
            if cursor is None:
                return

    def to_list(self) -> list[ItemT]:
        return list(self)


class AsyncPager(Generic[ItemT]):
    def __init__(self, client: AsyncFaaSClient, request: APIRequest, parse: Callable[[Any], ItemT]) -> None:
        self._client = client
        self._request = request
        self._parse = parse

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        cursor: str | None = None
        while True:
            page = await self._client._call(_page_request(self._request, cursor))
            for item in page.get("data", []):
                yield self._parse(item)
            cursor = _next_cursor(page)
            if cursor is None:
                return

    async def to_list(self) -> list[ItemT]:
        return [item async for item in self]
