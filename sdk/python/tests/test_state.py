"""client.state (checkpoint, restore, timeline, rollback), the Instance shortcuts, restart
``from_latest_checkpoint`` and the engine-side ``snapshots.clone``, blocking and async."""

from __future__ import annotations

import pytest

from faas_sdk import AsyncFaaSClient, ConflictError, FaaSClient, NoCheckpointError, Snapshot, TimelineEntry


def test_checkpoint_timeline_rollback_on_the_instance(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        instance.exec("echo one > /root/v")
        first = instance.checkpoint()
        instance.exec("echo two > /root/v")
        second = client.state.checkpoint(instance)
        timeline = instance.timeline()
        assert all(isinstance(e, TimelineEntry) for e in timeline)
        assert [(e.snapshot_id, e.inherited) for e in timeline] == [(base_snapshot.id, True), (first.id, False), (second.id, False)]

        instance.exec("echo three > /root/v")
        back = instance.rollback()  # steps=1: the latest checkpoint itself
        assert back.id == instance.id and back.state == "ready"
        assert instance.exec("cat /root/v").stdout == "two\n"
        assert client.state.rollback(instance, 2).id == instance.id
        assert instance.exec("cat /root/v").stdout == "one\n"

        with pytest.raises(NoCheckpointError) as refused:
            instance.rollback(3)
        assert isinstance(refused.value, ConflictError) and refused.value.status_code == 409
        assert refused.value.details == {"id": instance.id, "steps": 3, "available": 2}

        instance.exec("echo changed > /root/v")
        assert instance.restart(from_latest_checkpoint=True).state == "ready"
        assert instance.exec("cat /root/v").stdout == "one\n"
        for s in (first, second):
            client.snapshots.delete(s.id)


async def test_async_state_and_clone(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    async with aclient.instances.start(base_snapshot) as instance:
        await aclient.exec("echo cloned > /root/c", instance)
        checkpoint = await aclient.state.checkpoint(instance, metadata={"step": "1"})
        assert [e.snapshot_id for e in await aclient.state.timeline(instance)] == [base_snapshot.id, checkpoint.id]
    clone = await aclient.snapshots.clone(checkpoint, metadata={"copy": "yes"})
    assert clone.id != checkpoint.id and clone.parent_id == checkpoint.parent_id and clone.metadata == {"copy": "yes"}
    await aclient.snapshots.delete(checkpoint)
    async with aclient.state.restore(clone) as restored:
        assert (await aclient.exec("cat /root/c", restored)).stdout == "cloned\n"
    await aclient.snapshots.delete(clone)
