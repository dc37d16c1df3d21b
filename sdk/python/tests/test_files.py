"""Files of a running instance: small reads and writes, tar uploads/downloads, copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas_sdk import AsyncFaaSClient, ConflictError, FaaSClient, FileNotFoundError, Snapshot


def test_file_operations(client: FaaSClient, base_snapshot: Snapshot, tmp_path: Path) -> None:
    local = tmp_path / "tree"
    (local / "a" / "b").mkdir(parents=True)
    (local / "a" / "b" / "file.txt").write_text("nested\n")
    (local / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (local / "run.sh").chmod(0o755)
    with client.instances.start(base_snapshot) as source, client.instances.start(base_snapshot) as destination:
        result = client.files.upload(source, local, "/srv/tree")
        assert result.files >= 2 and result.bytes == len("nested\n") + len("#!/bin/sh\necho ran\n")
        assert client.exec("/srv/tree/run.sh; cat /srv/tree/a/b/file.txt", source).stdout == "ran\nnested\n"
        assert [f.name for f in client.files.list(source, "/srv/tree")] == ["a", "run.sh"]

        client.files.write(source, "/srv/tree/bin.dat", bytes(range(256)), mode="0600")
        assert client.files.read(source, "/srv/tree/bin.dat") == bytes(range(256))
        assert client.files.stat(source, "/srv/tree/bin.dat").mode == 0o600

        client.files.mkdir(source, "/srv/x/y", parents=True)
        with pytest.raises(ConflictError):
            client.files.mkdir(source, "/srv/x/y")
        client.files.rename(source, "/srv/x/y", "/srv/x/z")
        with pytest.raises(ConflictError):
            client.files.remove(source, "/srv/x")
        client.files.remove(source, "/srv/x", recursive=True)
        with pytest.raises(FileNotFoundError):
            client.files.stat(source, "/srv/x")

        copied = client.files.copy(source, destination, "/srv/tree", to_path="/opt")
        assert copied.files >= 2
        assert client.files.read_text(destination, "/opt/tree/a/b/file.txt") == "nested\n"

        client.files.download(destination, "/opt/tree", tmp_path / "back")
        assert (tmp_path / "back" / "a" / "b" / "file.txt").read_text() == "nested\n"
        assert (tmp_path / "back" / "run.sh").stat().st_mode & 0o111

        single = tmp_path / "single.txt"
        single.write_text("one file\n")
        client.files.upload(source, single, "/root/single.txt")
        assert client.files.read_text(source, "/root/single.txt") == "one file\n"


async def test_async_file_operations(aclient: AsyncFaaSClient, base_snapshot: Snapshot, tmp_path: Path) -> None:
    local = tmp_path / "up"
    local.mkdir()
    (local / "x.txt").write_text("x\n")
    async with aclient.instances.start(base_snapshot.id) as instance:
        await aclient.files.upload(instance, local, "/up")
        await aclient.files.write(instance, "/up/y.txt", "y\n")
        assert [f.name for f in await aclient.files.list(instance, "/up")] == ["x.txt", "y.txt"]
        assert await aclient.files.read_text(instance, "/up/y.txt") == "y\n"
        await aclient.files.download(instance, "/up", tmp_path / "down")
        assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["x.txt", "y.txt"]
        await aclient.files.remove(instance, "/up", recursive=True)
        with pytest.raises(FileNotFoundError):
            await aclient.files.list(instance, "/up")
