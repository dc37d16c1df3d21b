"""Interactive terminals over WebSocket."""

from __future__ import annotations

import asyncio

import pytest

from faas_sdk import AsyncFaaSClient, FaaSClient, InstanceNotFoundError, Snapshot


def test_terminal_shell_session(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        with client.terminals.open(instance, cols=100, rows=30) as terminal:
            terminal.resize(120, 40)
            terminal.send("stty size; echo marker-$((6*7))\n")
            assert b"marker-42" in terminal.read_until("marker-42", timeout=10)
            assert b"40 120" in terminal.output
            terminal.send("exit 3\n")
            assert terminal.wait(timeout=10) == 3
        with pytest.raises(InstanceNotFoundError):
            client.terminals.open("inst_doesnotexist")


async def test_async_terminal_command(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    async with aclient.instances.start(base_snapshot.id) as instance:
        async with await aclient.terminals.open(instance, command="read x; echo got-$x") as terminal:
            await terminal.send("hi\r")
            assert await asyncio.wait_for(terminal.wait(), 10) == 0
            assert b"got-hi" in terminal.output
