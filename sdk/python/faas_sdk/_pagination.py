"""Lists that page transparently: ``for x in client.instances.list()`` / ``async for``.

One request per page, following ``nextCursor`` until it is null; the request is rebuilt for each
page with the cursor added. The FIRST page is fetched when the list is called (sync client), so a
bad key or filter raises at ``client.snapshots.list()`` rather than at the first ``for``; later pages
as the loop reaches them. The async client's list, like TypeScript's, cannot raise before it is
awaited: ``await client.snapshots.list()`` collects every page (an error raises there), ``async
for`` pages lazily (an error raises at the first iteration). docs/sdk-behaviour.md.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generator, Generic, Iterator, TypeVar

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
        # Eager: errors (bad key, bad filter) surface at the call, not at the first iteration.
        self._first: Any = client._call(request)

    def __iter__(self) -> Iterator[ItemT]:
        cursor: str | None = None
        while True:
            if cursor is None and self._first is not None:
                page, self._first = self._first, None  # the page fetched at the call
            else:
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

    def __await__(self) -> Generator[Any, None, list[ItemT]]:
        """``await client.x.list()`` collects every page, as ``await`` does in TypeScript."""
        return self.to_list().__await__()
