"""Files of a running instance: read/write, list, mkdir, remove, rename, copy between instances,
and local paths uploaded/downloaded as tar streams."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from .._base_client import APIRequest, drop_none
from .._ids import IdRef, id_of
from .._tar import afile_chunks, aiter_chunks, extract_download, file_body_headers, file_chunks, iter_chunks, new_spool, pack_directory
from ..types import FileInfo, TransferResult
from ._resource import AsyncAPIResource, SyncAPIResource

#: Seconds for a whole upload or download of a tree; per-chunk progress is not a timeout signal.
TRANSFER_TIMEOUT = 600.0


def _files(instance: IdRef, op: str) -> str:
    return f"/v1/instances/{id_of(instance)}/files/{op}"


def _write_request(instance: IdRef, path: str, content: bytes, mode: str | None, parents: bool | None) -> APIRequest:
    params = drop_none({"path": path, "mode": mode, "parents": parents})
    headers = {"Content-Type": "application/octet-stream"}
    return APIRequest("PUT", _files(instance, "write"), params=params, content=lambda: content, headers=headers)


def _file_upload_request(instance: IdRef, path: str, local: Path, chunks: Any) -> APIRequest:
    """One local file, streamed (``chunks`` is file_chunks or afile_chunks), keeping its mode."""
    params = {"path": path, "mode": f"{local.stat().st_mode & 0o7777:04o}"}
    return APIRequest(
        "PUT", _files(instance, "write"), params=params, content=lambda: chunks(local),
        headers=file_body_headers(local), timeout=TRANSFER_TIMEOUT,
    )


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def _file_list(data: Any) -> list[FileInfo]:
    return [FileInfo.model_validate(item) for item in data.get("data", [])]


def _json_post(instance: IdRef, op: str, body: Mapping[str, Any]) -> APIRequest:
    return APIRequest("POST", _files(instance, op), json=drop_none(dict(body)))


def _tar_upload_headers() -> dict[str, str]:
    return {"Content-Type": "application/x-tar"}


class Files(SyncAPIResource):
    def read(self, target: IdRef, path: str) -> bytes:
        response = self._client._send(APIRequest("GET", _files(target, "read"), params={"path": path}))
        return response.content

    def read_text(self, target: IdRef, path: str, encoding: str = "utf-8") -> str:
        return self.read(target, path).decode(encoding)

    def write(self, target: IdRef, path: str, content: str | bytes, *, mode: str | None = None, parents: bool | None = None) -> FileInfo:
        """Replaces the file atomically (``mode`` is octal text such as ``"0755"``)."""
        return FileInfo.model_validate(self._client._call(_write_request(target, path, _as_bytes(content), mode, parents)))

    def stat(self, target: IdRef, path: str) -> FileInfo:
        return FileInfo.model_validate(self._client._call(APIRequest("GET", _files(target, "stat"), params={"path": path})))

    def list(self, target: IdRef, path: str) -> list[FileInfo]:
        return _file_list(self._client._call(APIRequest("GET", _files(target, "list"), params={"path": path})))

    def mkdir(self, target: IdRef, path: str, *, parents: bool = False, mode: int | None = None) -> FileInfo:
        return FileInfo.model_validate(self._client._call(_json_post(target, "mkdir", {"path": path, "parents": parents, "mode": mode})))

    def remove(self, target: IdRef, path: str, *, recursive: bool = False) -> None:
        self._client._call(_json_post(target, "remove", {"path": path, "recursive": recursive}))

    def rename(self, target: IdRef, source: str, destination: str) -> FileInfo:
        return FileInfo.model_validate(self._client._call(_json_post(target, "rename", {"from": source, "to": destination})))

    def copy(self, source: IdRef, destination: IdRef, path: str, *, to_path: str | None = None) -> TransferResult:
        """Copies ``path`` from one instance into ``to_path`` (default: the same parent) of another."""
        body = {"path": path, "toInstanceId": id_of(destination), "toPath": to_path}
        return TransferResult.model_validate(self._client._call(_json_post(source, "copy", body)))

    def upload(self, target: IdRef, local_path: str | os.PathLike[str], remote_path: str) -> TransferResult:
        """A local file becomes the file ``remote_path``; a local directory's contents go under the
        directory ``remote_path`` (created if missing), streamed as a tar archive."""
        local = Path(local_path)
        if local.is_file():
            info = FileInfo.model_validate(self._client._call(_file_upload_request(target, remote_path, local, file_chunks)))
            return TransferResult(files=1, bytes=info.size)
        with pack_directory(local) as archive:
            request = APIRequest(
                "PUT", _files(target, "tar"), params={"path": remote_path}, content=lambda: iter_chunks(archive),
                headers=_tar_upload_headers(), timeout=TRANSFER_TIMEOUT,
            )
            return TransferResult.model_validate(self._client._call(request))

    def download(self, target: IdRef, remote_path: str, local_path: str | os.PathLike[str]) -> None:
        """Downloads a remote file or directory (as a tar stream) to ``local_path``."""
        request = APIRequest("GET", _files(target, "tar"), params={"path": remote_path}, timeout=TRANSFER_TIMEOUT)
        with new_spool() as spool, self._client._stream(request) as response:
            for chunk in response.iter_bytes():
                spool.write(chunk)
            extract_download(spool, remote_path, local_path)


class AsyncFiles(AsyncAPIResource):
    async def read(self, target: IdRef, path: str) -> bytes:
        response = await self._client._send(APIRequest("GET", _files(target, "read"), params={"path": path}))
        return response.content

    async def read_text(self, target: IdRef, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(target, path)).decode(encoding)

    async def write(
        self, target: IdRef, path: str, content: str | bytes, *, mode: str | None = None, parents: bool | None = None
    ) -> FileInfo:
        return FileInfo.model_validate(await self._client._call(_write_request(target, path, _as_bytes(content), mode, parents)))

    async def stat(self, target: IdRef, path: str) -> FileInfo:
        return FileInfo.model_validate(await self._client._call(APIRequest("GET", _files(target, "stat"), params={"path": path})))

    async def list(self, target: IdRef, path: str) -> list[FileInfo]:
        return _file_list(await self._client._call(APIRequest("GET", _files(target, "list"), params={"path": path})))

    async def mkdir(self, target: IdRef, path: str, *, parents: bool = False, mode: int | None = None) -> FileInfo:
        request = _json_post(target, "mkdir", {"path": path, "parents": parents, "mode": mode})
        return FileInfo.model_validate(await self._client._call(request))

    async def remove(self, target: IdRef, path: str, *, recursive: bool = False) -> None:
        await self._client._call(_json_post(target, "remove", {"path": path, "recursive": recursive}))

    async def rename(self, target: IdRef, source: str, destination: str) -> FileInfo:
        return FileInfo.model_validate(await self._client._call(_json_post(target, "rename", {"from": source, "to": destination})))

    async def copy(self, source: IdRef, destination: IdRef, path: str, *, to_path: str | None = None) -> TransferResult:
        body = {"path": path, "toInstanceId": id_of(destination), "toPath": to_path}
        return TransferResult.model_validate(await self._client._call(_json_post(source, "copy", body)))

    async def upload(self, target: IdRef, local_path: str | os.PathLike[str], remote_path: str) -> TransferResult:
        local = Path(local_path)
        if local.is_file():
            info = FileInfo.model_validate(await self._client._call(_file_upload_request(target, remote_path, local, afile_chunks)))
            return TransferResult(files=1, bytes=info.size)
        with pack_directory(local) as archive:
            request = APIRequest(
                "PUT", _files(target, "tar"), params={"path": remote_path}, content=lambda: aiter_chunks(archive),
                headers=_tar_upload_headers(), timeout=TRANSFER_TIMEOUT,
            )
            return TransferResult.model_validate(await self._client._call(request))

    async def download(self, target: IdRef, remote_path: str, local_path: str | os.PathLike[str]) -> None:
        request = APIRequest("GET", _files(target, "tar"), params={"path": remote_path}, timeout=TRANSFER_TIMEOUT)
        with new_spool() as spool:
            async with self._client._stream(request) as response:
                async for chunk in response.aiter_bytes():
                    spool.write(chunk)
            extract_download(spool, remote_path, local_path)
