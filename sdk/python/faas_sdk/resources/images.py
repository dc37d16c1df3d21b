"""Images: the root filesystems snapshots boot from."""

from __future__ import annotations

from typing import Any, Mapping

from .._base_client import APIRequest, drop_none, metadata_params
from .._pagination import AsyncPager, SyncPager
from ..types import Image
from ._resource import AsyncAPIResource, SyncAPIResource


def _list_request(metadata: Mapping[str, str] | None, page_size: int | None) -> APIRequest:
    return APIRequest("GET", "/v1/images", params={**drop_none({"limit": page_size}), **metadata_params(metadata)})


def _parse(item: Any) -> Image:
    return Image.model_validate(item)


class Images(SyncAPIResource):
    def list(self, *, metadata: Mapping[str, str] | None = None, page_size: int | None = None) -> SyncPager[Image]:
        return SyncPager(self._client, _list_request(metadata, page_size), _parse)

    def get(self, image_id: str) -> Image:
        return _parse(self._client._call(APIRequest("GET", f"/v1/images/{image_id}")))

    def set_metadata(self, image_id: str, metadata: Mapping[str, str]) -> Image:
        return _parse(self._client._call(APIRequest("PUT", f"/v1/images/{image_id}/metadata", json=dict(metadata))))

    def delete(self, image_id: str) -> None:
        """Deletes an imported image and its files.

        Raises ``ConflictError`` (409) while snapshots made from it exist (``details["snapshots"]``:
        delete them first) and for the default image (``details["reason"] == "default_image"``).
        """
        self._client._call(APIRequest("DELETE", f"/v1/images/{image_id}"))


class AsyncImages(AsyncAPIResource):
    def list(self, *, metadata: Mapping[str, str] | None = None, page_size: int | None = None) -> AsyncPager[Image]:
        return AsyncPager(self._client, _list_request(metadata, page_size), _parse)

    async def get(self, image_id: str) -> Image:
        return _parse(await self._client._call(APIRequest("GET", f"/v1/images/{image_id}")))

    async def set_metadata(self, image_id: str, metadata: Mapping[str, str]) -> Image:
        return _parse(await self._client._call(APIRequest("PUT", f"/v1/images/{image_id}/metadata", json=dict(metadata))))

    async def delete(self, image_id: str) -> None:
        """Deletes an imported image and its files (see ``Images.delete``)."""
        await self._client._call(APIRequest("DELETE", f"/v1/images/{image_id}"))
