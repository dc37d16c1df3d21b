"""client.branches: the Branch resource (create, get, list, checkout, commit, delete, named forks)."""

from __future__ import annotations

import time

import pytest

from faas_sdk import AsyncFaaSClient, Branch, BranchNotFoundError, ConflictError, FaaSClient, Snapshot


def test_branch_lifecycle(client: FaaSClient, base_snapshot: Snapshot) -> None:
    name = f"py-main-{time.time_ns()}"
    branch = client.branches.create(base_snapshot, name=name, metadata={"sdk": "python"})
    started: list[str] = []
    try:
        assert isinstance(branch, Branch)
        assert (branch.head, branch.divergence_point, branch.parent_id) == (base_snapshot.id, base_snapshot.id, None)
        with pytest.raises(ConflictError) as taken:
            client.branches.create(base_snapshot, name=name)
        assert taken.value.code == "branch_name_taken"
        with pytest.raises(ConflictError) as not_out:
            branch.commit("nothing checked out")
        assert not_out.value.code == "branch_not_checked_out"

        instance = branch.checkout()
        started.append(instance.id)
        assert client.branches.checkout(branch).id == instance.id
        instance.exec("echo py > /root/f")
        head = branch.commit("first", metadata={"k": "v"})
        assert head.metadata == {"k": "v", "message": "first"}
        assert branch.refresh().head == head.id and branch.refresh().instance_id == instance.id

        forked = client.branches.fork(instance, 2, names=[f"{name}-a", f"{name}-b"])
        started.extend(i.id for i in forked.instances)
        assert forked.branches is not None and [b.instance_id for b in forked.branches] == [i.id for i in forked.instances]
        assert {b.id for b in client.branches.list(branch)} == {b.id for b in forked.branches}
        assert [b.id for b in client.branches.list(name=name)] == [branch.id]
        with pytest.raises(ConflictError) as children:
            branch.delete()
        assert children.value.code == "branch_has_children"
        for child in forked.branches:
            child.delete()
        branch.delete()
        with pytest.raises(BranchNotFoundError):
            client.branches.get(branch.id)
    finally:
        for instance_id in started:
            client.instances.delete(instance_id)
        try:
            client.branches.delete(branch, force=True)
        except BranchNotFoundError:
            pass


async def test_async_branches(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    branch = await aclient.branch(base_snapshot.id, name=f"py-async-{time.time_ns()}")
    try:
        instance = await aclient.branches.checkout(branch)
        try:
            head = await aclient.branches.commit(branch, "async")
            assert (await aclient.branches.get(branch.id)).head == head.id
            assert branch.id in [b.id async for b in aclient.branches.list(name=branch.name)]
        finally:
            await aclient.instances.delete(instance)
    finally:
        await aclient.branches.delete(branch)
