"""Snapshot chains (blocking and awaitable), step errors, deletion conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas_sdk import AsyncFaaSClient, ConflictError, ExecFailedError, FaaSClient, Snapshot, SnapshotChain


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
