"""Snapshot and Instance: the data models plus methods bound to the client that fetched them.

The methods are conveniences of the blocking client (``snapshot.exec("…")`` returns the next
Snapshot, so steps chain). With :class:`AsyncFaaSClient` the same objects come back, but the
chaining lives on the awaitable ``client.snapshots.create().exec(…)`` chain and everything else on
the resources (``await client.instances.stop(inst)``), so a coroutine is never hidden behind an
attribute that looks synchronous.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from pydantic import PrivateAttr

from .types import (
    BranchData,
    BranchResultData,
    ExecutionResult,
    InstanceData,
    InstanceLogs,
    InstanceMetrics,
    ServiceEndpoint,
    SnapshotData,
    TimelineEntry,
)

if TYPE_CHECKING:
    from ._client import FaaSClient
    from .resources.execution import Command
    from .resources.network import ServiceAuth
    from .resources.terminals import Terminal


class InstanceScoped:
    """A resource of the client with one instance filled in as the first argument:
    ``inst.files.write("/a", "x")`` is ``client.files.write(inst.id, "/a", "x")`` (TypeScript's
    ``instance.files`` / ``instance.processes``)."""

    def __init__(self, resource: object, instance_id: str) -> None:
        self._resource = resource
        self._instance_id = instance_id

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._resource, name)
        return functools.partial(method, self._instance_id)

    def __dir__(self) -> list[str]:
        return [n for n in dir(self._resource) if not n.startswith("_")]


def _sync_client(bound: object, what: str) -> FaaSClient:
    from ._client import FaaSClient

    if not isinstance(bound, FaaSClient):
        raise TypeError(
            f"{what} is a method of objects from the blocking FaaSClient; with AsyncFaaSClient "
            "await the resource method instead (e.g. `await client.instances.stop(inst)`)"
        )
    return bound


class Snapshot(SnapshotData):
    _client: Any = PrivateAttr(default=None)

    def bind(self, client: object) -> Snapshot:
        self._client = client
        return self

    def exec(self, command: Command, **options: Any) -> Snapshot:
        """A build step: a new child snapshot with ``command`` run in it (cached by the engine;
        ``fresh=True`` always runs, ``on_output(data, stream)`` streams its output)."""
        return _sync_client(self._client, "Snapshot.exec").snapshots.exec(self.id, command, **options)

    def upload(self, local_path: str, remote_path: str, **options: Any) -> Snapshot:
        """A new child snapshot with ``local_path`` uploaded to ``remote_path`` (cached by content; ``fresh=True`` always runs)."""
        return _sync_client(self._client, "Snapshot.upload").snapshots.upload(self.id, local_path, remote_path, **options)

    def start(self, **options: Any) -> Instance:
        return _sync_client(self._client, "Snapshot.start").instances.start(self.id, **options)

    def delete(self, *, force: bool = False) -> None:
        _sync_client(self._client, "Snapshot.delete").snapshots.delete(self.id, force=force)

    def diff(self, target: Any, *, text_diffs: bool | None = None) -> Any:
        """What changed in the files from this snapshot to ``target`` (a SnapshotDiff)."""
        return _sync_client(self._client, "Snapshot.diff").snapshots.diff(self.id, target, text_diffs=text_diffs)

    def set_metadata(self, metadata: Mapping[str, str]) -> Snapshot:
        return _sync_client(self._client, "Snapshot.set_metadata").snapshots.set_metadata(self.id, metadata)

    def clone(self, **options: Any) -> Snapshot:
        """An engine-side copy sharing this snapshot's image files (``client.snapshots.clone``)."""
        return _sync_client(self._client, "Snapshot.clone").snapshots.clone(self.id, **options)


class Instance(InstanceData):
    """A running sandbox. ``with client.instances.start(snap) as inst:`` stops it on the way out,
    also when the block raises."""

    _client: Any = PrivateAttr(default=None)

    def bind(self, client: object) -> Instance:
        self._client = client
        return self

    def exec(self, command: Command, **options: Any) -> ExecutionResult:
        return _sync_client(self._client, "Instance.exec").execution.run(command, self.id, **options)

    def exec_batch(self, commands: Any, **options: Any) -> list[ExecutionResult]:
        return _sync_client(self._client, "Instance.exec_batch").execution.batch(self.id, commands, **options)

    def exec_script(self, script: str, **options: Any) -> ExecutionResult:
        return _sync_client(self._client, "Instance.exec_script").execution.script(self.id, script, **options)

    def exec_with_snapshot(self, command: Command, **options: Any) -> Snapshot:
        return _sync_client(self._client, "Instance.exec_with_snapshot").execution.with_snapshot(self.id, command, **options)

    def exec_stream(self, command: Command, **options: Any) -> Any:
        """An ExecStream of ``command`` (``client.execution.stream``)."""
        return _sync_client(self._client, "Instance.exec_stream").execution.stream(self.id, command, **options)

    def terminal(self, **options: Any) -> Terminal:
        """An interactive terminal (``client.terminals.open``)."""
        return _sync_client(self._client, "Instance.terminal").terminals.open(self.id, **options)

    @property
    def files(self) -> InstanceScoped:
        """``client.files`` with this instance filled in: ``inst.files.read_text("/etc/hostname")``."""
        return InstanceScoped(_sync_client(self._client, "Instance.files").files, self.id)

    @property
    def processes(self) -> InstanceScoped:
        """``client.processes`` with this instance filled in: ``inst.processes.start("sleep 9")``."""
        return InstanceScoped(_sync_client(self._client, "Instance.processes").processes, self.id)

    def wait_until_ready(self, timeout: float | None = None) -> Instance:
        client = _sync_client(self._client, "Instance.wait_until_ready")
        return client.instances.wait_until_ready(self.id) if timeout is None else client.instances.wait_until_ready(self.id, timeout)

    def get_metrics(self) -> InstanceMetrics:
        return _sync_client(self._client, "Instance.get_metrics").instances.get_metrics(self.id)

    def set_metadata(self, metadata: Mapping[str, str]) -> Instance:
        return _sync_client(self._client, "Instance.set_metadata").instances.set_metadata(self.id, metadata)

    def snapshot(self, **options: Any) -> Snapshot:
        return _sync_client(self._client, "Instance.snapshot").instances.snapshot(self.id, **options)

    def branch(self, count: int = 1, **options: Any) -> BranchResult:
        return _sync_client(self._client, "Instance.branch").instances.branch(self.id, count, **options)

    def set_network(self, **options: Any) -> Instance:
        """Changes the egress policy and/or bandwidth (``network_config=``, ``network_bandwidth=``)."""
        return _sync_client(self._client, "Instance.set_network").instances.set_network(self.id, **options)

    def upload(self, local_path: str, remote_path: str) -> None:
        _sync_client(self._client, "Instance.upload").files.upload(self.id, local_path, remote_path)

    def download(self, remote_path: str, local_path: str) -> None:
        _sync_client(self._client, "Instance.download").files.download(self.id, remote_path, local_path)

    def expose_http(self, name: str, port: int, *, auth: ServiceAuth | None = None) -> ServiceEndpoint:
        """Serves ``port`` of this instance under a URL named ``name`` (``client.network.expose_http``)."""
        return _sync_client(self._client, "Instance.expose_http").network.expose_http(self.id, name, port, auth=auth)

    def hide_http(self, name: str) -> None:
        _sync_client(self._client, "Instance.hide_http").network.hide_http(self.id, name)

    def list_services(self) -> list[ServiceEndpoint]:
        return _sync_client(self._client, "Instance.list_services").network.list_services(self.id)

    def refresh(self) -> Instance:
        return _sync_client(self._client, "Instance.refresh").instances.get(self.id)

    def stop(self) -> Instance:
        return _sync_client(self._client, "Instance.stop").instances.stop(self.id)

    def pause(self) -> Instance:
        return _sync_client(self._client, "Instance.pause").instances.pause(self.id)

    def resume(self) -> Instance:
        return _sync_client(self._client, "Instance.resume").instances.resume(self.id)

    def delete(self) -> None:
        _sync_client(self._client, "Instance.delete").instances.delete(self.id)

    def restart(self, *, from_latest_checkpoint: bool | None = None) -> Instance:
        return _sync_client(self._client, "Instance.restart").instances.restart(self.id, from_latest_checkpoint=from_latest_checkpoint)

    def checkpoint(self, name: str | None = None, **options: Any) -> Snapshot:
        """A checkpoint of this instance (``client.state.checkpoint``)."""
        return _sync_client(self._client, "Instance.checkpoint").state.checkpoint(self.id, name, **options)

    def timeline(self) -> list[TimelineEntry]:
        """This instance's checkpoints, oldest first (``client.state.timeline``)."""
        return _sync_client(self._client, "Instance.timeline").state.timeline(self.id)

    def logs(self, *, since: int | None = None, tail: int | None = None) -> InstanceLogs:
        """This instance's log (``client.instances.logs``)."""
        return _sync_client(self._client, "Instance.logs").instances.logs(self.id, since=since, tail=tail)

    def rollback(self, steps: int = 1) -> Instance:
        """Back in place to the checkpoint ``steps`` back, 1 = the latest (``client.state.rollback``)."""
        return _sync_client(self._client, "Instance.rollback").state.rollback(self.id, steps)

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Branch(BranchData):
    """A named line of snapshots (git's branch): ``head`` moves with every commit of its
    checked-out instance; ``checkout()`` gives that instance (restored from ``head`` when none)."""

    _client: Any = PrivateAttr(default=None)

    def bind(self, client: object) -> Branch:
        self._client = client
        return self

    def refresh(self) -> Branch:
        return _sync_client(self._client, "Branch.refresh").branches.get(self.id)

    def checkout(self) -> Instance:
        return _sync_client(self._client, "Branch.checkout").branches.checkout(self.id)

    def commit(self, message: str | None = None, **options: Any) -> Snapshot:
        return _sync_client(self._client, "Branch.commit").branches.commit(self.id, message, **options)

    def delete(self, *, force: bool = False) -> None:
        _sync_client(self._client, "Branch.delete").branches.delete(self.id, force=force)

    def diff(self, target: Any, *, text_diffs: bool | None = None) -> Any:
        """What changed in the files from this branch's head to ``target`` (a BranchDiff)."""
        return _sync_client(self._client, "Branch.diff").branches.diff(self.id, target, text_diffs=text_diffs)

    def rebase(self, target: Any, *, strategy: Any = None) -> Branch:
        """Replays this branch's changes onto ``target``'s head; returns the moved branch."""
        moved: Branch = _sync_client(self._client, "Branch.rebase").branches.rebase(self.id, target, strategy=strategy)
        return moved


class BranchResult(BranchResultData):
    """The snapshot a live branch took and the instances started from it (and, when the branch
    was given ``names``, the Branch record of each instance, in the same order)."""

    snapshot: Snapshot
    instances: list[Instance]
    branches: Optional[list[Branch]] = None

    def bind(self, client: object) -> BranchResult:
        self.snapshot.bind(client)
        for instance in self.instances:
            instance.bind(client)
        for branch in self.branches or []:
            branch.bind(client)
        return self
