"""Snapshot chains (blocking and awaitable), step errors, deletion conflicts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import Engine

from faas_sdk import AsyncFaaSClient, ConflictError, ExecFailedError, FaaSClient, ImageNotFoundError, Snapshot, SnapshotChain


def _data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    (data / "input.txt").write_text("3\n")
    (data / "nested" / "deep.txt").write_text("deep\n")
    return data


def test_chain_exec_upload_exec(client: FaaSClient, tmp_path: Path) -> None:
    root = client.snapshots.create(environment={"CHAIN": "sync"})
    try:
        final = (
            root.exec("echo base > /root/base")
            .upload(str(_data_dir(tmp_path)), "/data")
            .exec("cat /data/input.txt /data/nested/deep.txt > /root/combined")
        )
        assert isinstance(final, Snapshot) and final.parent_id is not None
        with final.start() as instance:
            assert instance.exec("cat /root/base /root/combined; echo $CHAIN").stdout == "base\n3\ndeep\nsync\n"
    finally:
        root.delete(force=True)


async def test_async_chain_is_awaitable(aclient: AsyncFaaSClient, tmp_path: Path) -> None:
    chain = aclient.snapshots.create(environment={"CHAIN": "async"}).exec("echo one > /root/one")
    assert isinstance(chain, SnapshotChain)
    final = await chain.upload(str(_data_dir(tmp_path)), "/data").exec("cat /data/input.txt >> /root/one")
    try:
        async with aclient.instances.start(final) as instance:
            assert (await aclient.exec("cat /root/one", instance)).stdout == "one\n3\n"
    finally:
        root = await aclient.snapshots.get(final.parent_id or "")
        while root.parent_id:
            root = await aclient.snapshots.get(root.parent_id)
        await aclient.snapshots.delete(root, force=True)


def test_failed_step_and_dependents(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with pytest.raises(ExecFailedError) as caught:
        base_snapshot.exec("echo nope >&2; exit 3")
    assert caught.value.status_code == 422 and caught.value.details == {"exitCode": 3, "stdout": "", "stderr": "nope\n"}
    with client.instances.start(base_snapshot):
        with pytest.raises(ConflictError):
            client.snapshots.delete(base_snapshot)


def test_metadata_and_listing(client: FaaSClient, base_snapshot: Snapshot) -> None:
    updated = client.snapshots.set_metadata(base_snapshot, {"suite": "python-sdk", "extra": "1"})
    assert updated.metadata["extra"] == "1"
    found = [s.id for s in client.snapshots.list(metadata={"extra": "1"}, page_size=1)]
    assert found == [base_snapshot.id]
    client.snapshots.set_metadata(base_snapshot, {"suite": "python-sdk"})
    images = client.images.list().to_list()
    assert images and client.images.get(images[0].id).digest.startswith("sha256:")


def _import_bootable_image(engine: Engine, tmp_path: Path, name: str) -> str:
    """Imports dash and its libraries (from the default image) as an image, over plain HTTP: the
    Python SDK has no import call."""
    src = Path("/var/cache/faas/images/default/rootfs")
    root = tmp_path / "root"
    for sub in ("bin", "lib/x86_64-linux-gnu", "lib64", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for source, dest in (("bin/dash", "bin/sh"), ("lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"), ("lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")):
        subprocess.run(["cp", "-L", str(src / source), str(root / dest)], check=True)
    archive = subprocess.run(["tar", "-cz", "-C", str(root), "."], check=True, capture_output=True).stdout
    res = httpx.post(
        f"{engine.endpoint}/v1/images/import",
        params={"name": name},
        content=archive,
        headers={"authorization": f"Bearer {engine.api_key}", "content-type": "application/gzip"},
        timeout=60,
    )
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def test_image_delete_conflict_then_delete(client: FaaSClient, engine: Engine, tmp_path: Path) -> None:
    image_id = _import_bootable_image(engine, tmp_path, f"py-del-{tmp_path.name}")
    snapshot = client.snapshots.create(image_id=image_id, memory=256)
    with pytest.raises(ConflictError) as busy:
        client.images.delete(image_id)
    assert busy.value.status_code == 409
    assert busy.value.details is not None and busy.value.details["snapshots"] == [snapshot.id]
    client.snapshots.delete(snapshot, force=True)
    client.images.delete(image_id)
    with pytest.raises(ImageNotFoundError):
        client.images.get(image_id)
    default = next(i for i in client.images.list() if i.source == "debootstrap")
    with pytest.raises(ConflictError) as refused:
        client.images.delete(default.id)
    assert refused.value.details is not None and refused.value.details["reason"] == "default_image"


async def test_image_delete_async(aclient: AsyncFaaSClient, engine: Engine, tmp_path: Path) -> None:
    image_id = _import_bootable_image(engine, tmp_path, f"py-adel-{tmp_path.name}")
    await aclient.images.delete(image_id)
    with pytest.raises(ImageNotFoundError):
        await aclient.images.get(image_id)
