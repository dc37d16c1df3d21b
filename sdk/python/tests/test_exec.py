"""Exec in all its forms, streams (iterator, callbacks, cancellation) and target-less exec."""

from __future__ import annotations

import asyncio
import time

from faas_sdk import AsyncFaaSClient, FaaSClient, Snapshot

COUNTER = "i=0; while true; do i=$((i+1)); echo $i; echo $i > /tmp/streamed; sleep 0.05; done"


def test_exec_batch_script_and_argv(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        result = client.exec(["printf", "%s-%s", "a", "b"], instance)
        assert result.stdout == "a-b" and result.ok
        assert client.exec("cat", instance, stdin="piped").stdout == "piped"
        assert client.exec("pwd", instance, cwd="/tmp").stdout == "/tmp\n"
        assert client.exec("echo $X", instance, env={"X": "y"}).stdout == "y\n"
        timed = client.exec("sleep 5", instance, timeout=0.5)
        assert timed.timed_out and not timed.ok
        batch = client.exec_batch(instance, ["echo 1", "exit 4", "echo never"], stop_on_error=True)
        assert [r.exit_code for r in batch] == [0, 4]
        assert client.exec_script(instance, 'echo "$#:$1"', args=["x"]).stdout == "1:x\n"


def test_exec_with_snapshot_keeps_the_state(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        snapshot = client.exec_with_snapshot(instance, "echo saved > /root/saved")
        assert snapshot.instance_id == instance.id
    with snapshot.start() as restored:
        assert restored.exec("cat /root/saved").stdout == "saved\n"
    snapshot.delete(force=True)


def test_exec_without_target_returns_a_snapshot_of_the_result(client: FaaSClient) -> None:
    result = client.exec("echo made > /root/made; echo done")
    assert result.stdout == "done\n" and result.snapshot_id is not None
    on_snapshot = client.exec("cat /root/made", result.snapshot_id)
    assert on_snapshot.stdout == "made\n"
    assert client.instances.list(state="ready").to_list() == []


def test_stream_iterator_and_callbacks(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        with client.execution.stream(instance, "echo a; echo b >&2; exit 2") as stream:
            events = list(stream)
        assert [e.type for e in events] == ["start", "stdout", "stderr", "exit"]
        assert events[0].pid and events[-1].exit_code == 2
        seen: list[str] = []
        result = client.exec("for i in 1 2 3; do echo $i; sleep 0.05; done", instance, on_stdout=seen.append)
        assert "".join(seen) == "1\n2\n3\n" == result.stdout and len(seen) >= 2


def test_breaking_out_of_a_stream_kills_the_command(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        with client.execution.stream(instance, COUNTER) as stream:
            for event in stream:
                if event.type == "stdout":
                    break
        _assert_counter_stopped(lambda cmd: client.exec(cmd, instance).stdout)


async def test_async_exec_stream_and_cancellation(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    async with aclient.instances.start(base_snapshot.id) as instance:
        batch = await aclient.exec_batch(instance, ["echo 1", "echo 2"])
        assert [r.stdout for r in batch] == ["1\n", "2\n"]
        assert (await aclient.exec_script(instance, "echo hi")).stdout == "hi\n"
        events = [e.type async for e in aclient.execution.stream(instance, "echo x")]
        assert events == ["start", "stdout", "exit"]

        first_output = asyncio.Event()

        async def consume() -> None:
            async for event in aclient.execution.stream(instance, COUNTER):
                if event.type == "stdout":
                    first_output.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_output.wait(), 10)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(0.5)  # the engine notices the hang-up and kills the process group
        before = (await aclient.exec("cat /tmp/streamed", instance)).stdout
        await asyncio.sleep(0.5)
        after = (await aclient.exec("cat /tmp/streamed", instance)).stdout
        assert before == after, "the streamed command kept running after its task was cancelled"


def _assert_counter_stopped(run: object) -> None:
    time.sleep(0.5)
    before = run("cat /tmp/streamed")  # type: ignore[operator]
    time.sleep(0.5)
    assert run("cat /tmp/streamed") == before, "the streamed command kept running after the stream closed"  # type: ignore[operator]
