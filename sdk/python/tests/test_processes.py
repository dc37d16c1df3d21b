"""Background processes: stdin, wait, signals, output (buffered, live, re-attached)."""

from __future__ import annotations

import pytest

from faas_sdk import AsyncFaaSClient, ConflictError, FaaSClient, FaaSTimeoutError, ProcessNotFoundError, Snapshot


def test_process_handle(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        echo = client.processes.start(instance, "while read line; do echo got:$line; done; exit 3", tag="echo")
        echo.send_stdin("one\n")
        echo.send_stdin(b"two\n")
        echo.close_stdin()
        assert echo.wait(timeout=10).exit_code == 3
        with pytest.raises(ConflictError):
            echo.send_stdin("late\n")
        output = list(echo.output(follow=False))
        assert "".join(o.data or "" for o in output if o.type == "stdout") == "got:one\ngot:two\n"
        assert output[-1].type == "exit" and output[-1].exit_code == 3
        first_seq = output[0].seq or 0
        resumed = list(echo.output(follow=False, since=first_seq))  # re-attach after the first chunk
        assert all((o.seq or 0) > first_seq for o in resumed if o.type == "stdout")
        assert resumed[-1].type == "exit"

        sleeper = client.processes.start(instance, "echo started; sleep 60")
        with pytest.raises(FaaSTimeoutError):
            sleeper.wait(timeout=0.3)
        live = sleeper.output(follow=True)
        assert next(live).data == "started\n"
        sleeper.kill()
        assert [o.type for o in live][-1] == "exit"
        assert sleeper.wait(timeout=10).signal == "SIGKILL"
        assert {p.tag for p in client.processes.list(instance)} >= {"echo"}
        with pytest.raises(ProcessNotFoundError):
            client.processes.get(instance, 999999)


async def test_async_process_handle(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    async with aclient.instances.start(base_snapshot.id) as instance:
        process = await aclient.processes.start(instance, "cat", stdin="hello ")
        await process.send_stdin("world")
        await process.close_stdin()
        chunks = [o async for o in process.output(follow=True)]
        assert "".join(o.data or "" for o in chunks if o.type == "stdout") == "hello world"
        assert (await process.wait(timeout=10)).exit_code == 0
        await process.refresh()
        assert process.info.state == "exited"
