"""Base of every resource pair: each holds its client and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._client import AsyncFaaSClient, FaaSClient


class SyncAPIResource:
    def __init__(self, client: FaaSClient) -> None:
        self._client = client


class AsyncAPIResource:
    def __init__(self, client: AsyncFaaSClient) -> None:
        self._client = client
