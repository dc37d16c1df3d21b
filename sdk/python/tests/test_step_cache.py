"""The step cache from Python: identical creates and steps are hits (``cached``, the recorded
``step_result``), ``fresh`` and ``OptimizationHints(reuse_snapshots=False)`` run again, ``on_output``
gets a step's output while it runs (shown by order: the step waits for a file written only after
its first chunk arrived) and the recorded output on a hit, uploads are cached by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Engine

from faas_sdk import AsyncFaaSClient, ExecFailedError, FaaSClient, OptimizationHints, Snapshot


def test_create_and_exec_hits_fresh_and_hints(client: FaaSClient, engine: Engine) -> None:
    root = client.snapshots.create(environment={"SUITE": "py-step-cache"})
    try:
        assert root.cached is False
        hit = client.snapshots.create(environment={"SUITE": "py-step-cache"})
        assert (hit.id, hit.cached) == (root.id, True)
        step = root.exec("echo out; echo err >&2")
        assert step.cached is False and step.step_result is not None
        assert (step.step_result.exit_code, step.step_result.stdout, step.step_result.stderr) == (0, "out\n", "err\n")
        again = root.exec("echo out; echo err >&2")
        assert (again.id, again.cached) == (step.id, True)
        assert again.step_result == step.step_result
        assert root.exec("echo out; echo err >&2", fresh=True).id != step.id
        with engine.sync_client(optimization_hints=OptimizationHints(reuse_snapshots=False)) as no_reuse:
            booted = no_reuse.snapshots.create(environment={"SUITE": "py-step-cache"})
            assert booted.id != root.id and booted.cached is False
            booted.delete(force=True)
    finally:
        root.delete(force=True)


def test_on_output_streams_while_the_step_runs(client: FaaSClient, base_snapshot: Snapshot) -> None:
    command = "echo first; while [ ! -e /root/go ]; do sleep 0.05; done; echo second"
    seen: list[tuple[str, str]] = []

    def on_output(data: str, stream: str) -> None:
        seen.append((stream, data))
        if len(seen) == 1:  # the step cannot end before this: it waits for /root/go
            (live,) = client.instances.list(metadata={"faas.step": "exec"}, state="ready").to_list()
            client.files.write(live.id, "/root/go", "")

    made = client.snapshots.exec(base_snapshot, command, on_output=on_output)
    try:
        assert seen[0] == ("stdout", "first\n")
        assert "".join(data for _, data in seen) == "first\nsecond\n"
        assert made.cached is False
        replayed: list[tuple[str, str]] = []
        hit = client.snapshots.exec(base_snapshot, command, on_output=lambda data, stream: replayed.append((stream, data)))
        assert (hit.id, hit.cached, replayed) == (made.id, True, [("stdout", "first\nsecond\n")])
        with pytest.raises(ExecFailedError):
            client.snapshots.exec(base_snapshot, "echo no; exit 2", on_output=lambda data, stream: None)
    finally:
        client.snapshots.delete(made, force=True)


async def test_async_on_output_and_upload_cache(aclient: AsyncFaaSClient, base_snapshot: Snapshot, tmp_path: Path) -> None:
    chunks: list[str] = []
    made = await aclient.snapshots.exec(base_snapshot, "echo async-out", on_output=lambda data, stream: chunks.append(data))
    local = tmp_path / "f.txt"
    local.write_text("one")
    first = await aclient.snapshots.upload(base_snapshot, str(local), "/root/f.txt")
    made_here = [made, first]
    try:
        assert chunks == ["async-out\n"] and made.cached in (False, True)
        assert first.cached is False
        assert (await aclient.snapshots.upload(base_snapshot, str(local), "/root/f.txt")).id == first.id
        local.write_text("two")
        changed = await aclient.snapshots.upload(base_snapshot, str(local), "/root/f.txt")
        made_here.append(changed)
        assert changed.id != first.id and changed.cached is False
        async with aclient.instances.start(changed) as instance:
            assert (await aclient.exec("cat /root/f.txt", instance)).stdout == "two"
    finally:
        for snapshot in made_here:
            await aclient.snapshots.delete(snapshot, force=True)
