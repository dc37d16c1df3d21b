"""Local paths <-> tar streams for uploads and downloads.

Uploads: a directory's *contents* go under the remote directory (``upload("./data", "/data")``
gives ``/data/…``), packed into a spooled temporary file (memory up to 8 MiB, then disk) and sent
in chunks. Downloads: the engine's archive holds ``basename(remote)/…``; that top entry becomes
``local_path`` (or ``local_path/basename`` when ``local_path`` is an existing directory). Extraction refuses members that would land outside the destination.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import IO, AsyncIterator, Iterator

CHUNK = 64 * 1024
SPOOL_LIMIT = 8 * 1024 * 1024


def pack_directory(local_dir: str | os.PathLike[str]) -> IO[bytes]:
    """A tar of the directory's contents (names relative to it), rewound and ready to read."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)  # noqa: SIM115 - returned
    root = Path(local_dir)
    with tarfile.open(fileobj=spool, mode="w") as archive:
        for child in sorted(root.iterdir()):
            archive.add(str(child), arcname=child.name)
    spool.seek(0)
    return spool


def iter_chunks(file: IO[bytes]) -> Iterator[bytes]:
    file.seek(0)
    while chunk := file.read(CHUNK):
        yield chunk


async def aiter_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    for chunk in iter_chunks(file):
        yield chunk


def file_chunks(path: Path) -> Iterator[bytes]:
    """A local file in 64 KiB chunks, opened anew by each call (so a retry re-reads it): uploads
    stream and never hold the whole file in memory, as in the TypeScript SDK."""
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


async def afile_chunks(path: Path) -> AsyncIterator[bytes]:
    for chunk in file_chunks(path):
        yield chunk


def file_body_headers(path: Path) -> dict[str, str]:
    """A streamed file still announces its length, so the engine can refuse an oversized one at once."""
    return {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}


def new_spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)


def _check_member(member: tarfile.TarInfo, destination: Path) -> None:
    target = (destination / member.name).resolve()
    if not str(target).startswith(str(destination.resolve()) + os.sep) and target != destination.resolve():
        raise ValueError(f"refusing tar entry outside the destination: {member.name!r}")
    if member.issym() or member.islnk():
        link = (target.parent / member.linkname).resolve() if member.issym() else (destination / member.linkname).resolve()
        if not str(link).startswith(str(destination.resolve())):
            raise ValueError(f"refusing link that points outside the destination: {member.name!r}")


def extract_download(archive_file: IO[bytes], remote_path: str, local_path: str | os.PathLike[str]) -> None:
    """Extracts the engine's archive of ``remote_path`` so that it becomes ``local_path``."""
    archive_file.seek(0)
    destination = Path(local_path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent) as staging_dir:
        staging = Path(staging_dir)
        with tarfile.open(fileobj=archive_file, mode="r:*") as archive:
            members = archive.getmembers()
            for member in members:
                _check_member(member, staging)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(staging, members=members, filter="fully_trusted")  # checked above
            else:  # pragma: no cover - Pythons before the extraction-filter backport
                archive.extractall(staging, members=members)
        top = staging / (Path(remote_path.rstrip("/")).name or ".")
        # Like `cp -r`: into an existing directory, otherwise as the new name. Never overwrite.
        target = destination / top.name if destination.is_dir() else destination
        if target.exists() or target.is_symlink():
            raise FileExistsError(f"{target} exists; remove it or download elsewhere")
        os.replace(top, target)
