"""SSHClient / AsyncSSHClient over the engine's SSH gateway (the same behaviour as
sdk/typescript/test/ssh.test.ts): exec with exit codes and signals, files and trees with modes and
symlinks, a PTY shell, registered private keys, and typed errors."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from faas_sdk import (
    AsyncFaaSClient,
    AsyncSSHClient,
    FaaSClient,
    Snapshot,
    SSHAuthenticationError,
    SSHClient,
    SSHError,
)

from .conftest import Engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_exec_files_trees_and_shell(client: FaaSClient, base_snapshot: Snapshot, tmp_path: Path) -> None:
    with client.instances.start(base_snapshot) as instance, SSHClient(client) as ssh:
        ssh.connect(instance)
        r = ssh.exec_command("echo out; echo err >&2; exit 5")
        assert (r.stdout, r.stderr, r.exit_code, r.signal) == ("out\n", "err\n", 5, None)
        killed = ssh.exec_command("kill -KILL $$")
        assert (killed.exit_code, killed.signal) == (None, "SIGKILL")

        src = tmp_path / "tree"
        (src / "bin").mkdir(parents=True)
        (src / "bin" / "run.sh").write_text("#!/bin/sh\necho ran\n")
        (src / "bin" / "run.sh").chmod(0o750)
        (src / "secret").write_text("x" * 100_000)
        (src / "secret").chmod(0o600)
        (src / "link").symlink_to("bin/run.sh")
        ssh.put_directory(str(src), "/root/tree")
        r = ssh.exec_command('cd /root/tree && stat -c "%n %a" bin/run.sh secret && readlink link && ./bin/run.sh')
        assert r.stdout == "bin/run.sh 750\nsecret 600\nbin/run.sh\nran\n"
        back = tmp_path / "back"
        ssh.get_directory("/root/tree", str(back))
        assert (back / "secret").read_text() == "x" * 100_000
        assert _mode(back / "secret") == 0o600
        assert _mode(back / "bin" / "run.sh") == 0o750
        assert os.readlink(back / "link") == "bin/run.sh"

        one = tmp_path / "one.txt"
        one.write_text("one")
        one.chmod(0o640)
        ssh.put_file(str(one), "/tmp/one.txt")
        ssh.get_file("/tmp/one.txt", str(tmp_path / "one-back.txt"))
        assert (tmp_path / "one-back.txt").read_text() == "one"
        assert _mode(tmp_path / "one-back.txt") == 0o640
        with pytest.raises(SSHError):
            ssh.get_file("/nonexistent", str(tmp_path / "x"))

        shell = ssh.create_shell(cols=100, rows=30)
        shell.write("stty size; exit 4\n")
        out = b""
        while chunk := shell.read():
            out += chunk
        assert b"30 100" in out
        assert shell.wait() == 4


async def test_async_client_keys_and_refusals(
    aclient: AsyncFaaSClient, client: FaaSClient, engine: Engine, base_snapshot: Snapshot, tmp_path: Path
) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "py-test", "-f", str(key)], check=True)
    private_key = key.read_bytes()
    async with aclient.instances.start(base_snapshot.id) as instance:
        with pytest.raises(SSHAuthenticationError):
            await aclient.ssh.connect(instance, private_key=private_key)
        added = await aclient.ssh_keys.add((tmp_path / "id.pub").read_text())
        assert added.name == "py-test" and added.fingerprint.startswith("SHA256:")
        assert any(k.id == added.id for k in [k async for k in aclient.ssh_keys.list()])
        async with AsyncSSHClient(aclient, private_key=private_key) as ssh:
            await ssh.connect(instance)
            assert (await ssh.exec_command("echo key")).stdout == "key\n"
            shell = await ssh.create_shell()
            shell.write("exit 2\n")
            assert await shell.wait() == 2
        await aclient.ssh_keys.remove(added.id)
        with pytest.raises(SSHAuthenticationError):
            await aclient.ssh.connect(instance, private_key=private_key)

        other = client.keys.create("ssh-py-other")
        try:
            async with AsyncFaaSClient(other.secret, endpoint=engine.endpoint) as stranger:
                theirs = await stranger.ssh.connect(instance.id)
                with pytest.raises(SSHError, match="no instance"):
                    await theirs.exec_command("true")
                await theirs.disconnect()
        finally:
            client.keys.revoke(other.id)
