"""Images: the root filesystems snapshots boot from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Union

from .._base_client import APIRequest, drop_none, metadata_params
from .._pagination import AsyncPager, SyncPager
from .._tar import CHUNK, afile_chunks, file_chunks
from ..types import Image

#: What ``images.import_`` reads: a path to a tar file (streamed from disk), or a binary file object
#: / iterable of bytes (read once: such a call is never retried).
ImageSource = Union[str, "os.PathLike[str]", IO[bytes], Iterable[bytes]]
#: Seconds an import may take (a rootfs tar is large).
IMPORT_TIMEOUT = 1800.0


def _import_request(source: ImageSource, name: str, asynchronous: bool) -> APIRequest:
    """POST /v1/images/import with the tar streamed, never held whole; without an Idempotency-Key,
    as in TypeScript (streamed bodies skip the engine's idempotency store), so it is not retried."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        content: Any = (lambda: afile_chunks(path)) if asynchronous else (lambda: file_chunks(path))
    else:
        chunks = _read_chunks(source)
        content = (lambda: _as_async(chunks)) if asynchronous else (lambda: chunks)
    headers = {"Content-Type": "application/x-tar"}
    return APIRequest(
        "POST", "/v1/images/import", params={"name": name}, content=content, headers=headers, timeout=IMPORT_TIMEOUT, idempotent=False
    )


def _read_chunks(source: IO[bytes] | Iterable[bytes]) -> Iterable[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        return source
    return iter(lambda: read(CHUNK), b"")


async def _as_async(chunks: Iterable[bytes]) -> Any:
    for chunk in chunks:
        yield chunk
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

    def import_(self, source: ImageSource, *, name: str) -> Image:
        """Imports a root filesystem tar as a new image named ``name`` (TypeScript: ``images.import``;
        ``import`` is a Python keyword). ``source``: a path, a binary file or an iterable of bytes."""
        return _parse(self._client._call(_import_request(source, name, asynchronous=False)))

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

    async def import_(self, source: ImageSource, *, name: str) -> Image:
        """See :meth:`Images.import_`."""
        return _parse(await self._client._call(_import_request(source, name, asynchronous=True)))

    async def set_metadata(self, image_id: str, metadata: Mapping[str, str]) -> Image:
        return _parse(await self._client._call(APIRequest("PUT", f"/v1/images/{image_id}/metadata", json=dict(metadata))))

    async def delete(self, image_id: str) -> None:
        """Deletes an imported image and its files (see ``Images.delete``)."""
        await self._client._call(APIRequest("DELETE", f"/v1/images/{image_id}"))
