"""Pydantic models of the API's resources: snake_case attributes, aliased to the API's camelCase.

Unknown fields the engine may add later are kept (``extra="allow"``) rather than rejected, so an
older SDK keeps working against a newer engine.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "FaaSModel",
    "Health",
    "Image",
    "ApiKey",
    "CreatedKey",
    "Token",
    "SshKey",
    "SshHost",
    "SshHostKey",
    "SSHExecResult",
    "Resources",
    "EgressPolicy",
    "NetworkConfig",
    "SnapshotData",
    "SnapshotPool",
    "StepResult",
    "SnapshotStorage",
    "InstanceData",
    "InstanceNetwork",
    "InstanceEndpoints",
    "InstanceMetrics",
    "InstanceLogEntry",
    "InstanceLogs",
    "InstanceState",
    "ExecutionResult",
    "ExecEvent",
    "FileInfo",
    "TransferResult",
    "ProcessInfo",
    "ProcessOutput",
    "Event",
    "BranchResultData",
    "BranchData",
    "TimelineEntry",
    "ServiceEndpoint",
    "WakeOn",
]

InstanceState = Literal["pending", "ready", "paused", "stopping", "stopped", "error"]


class FaaSModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_api(self) -> dict[str, Any]:
        """The camelCase JSON form, as the API sends it."""
        return self.model_dump(mode="json", by_alias=True)


class Health(FaaSModel):
    status: str
    version: str
    uptime_ms: int


class Image(FaaSModel):
    id: str
    name: str
    source: str
    size: int
    digest: str
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: str


class ApiKey(FaaSModel):
    id: str
    name: str
    admin: bool
    created_at: str


class CreatedKey(ApiKey):
    #: The key itself, shown only in the answer to the create.
    secret: str


class Token(FaaSModel):
    token: str
    expires_at: str
    key_id: str


class Resources(FaaSModel):
    vcpus: int
    memory: int
    disk_size: int
    max_processes: Optional[int] = None
    #: Mbit/s each way on the instance's network, enforced on the host; None = no limit.
    network_bandwidth: Optional[int] = None


class EgressPolicy(FaaSModel):
    """Which destinations an instance may reach. Precedence: DNS to the host's resolvers (when
    ``dns``), then ``allow``, then ``deny``, then ``mode``. Entries are IPv4 addresses, IPv4 CIDRs
    or host names (resolved on the engine host); sandboxes speak IPv4 only."""

    mode: Literal["allow-all", "deny-all"] = "allow-all"
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)
    dns: bool = True


class NetworkConfig(FaaSModel):
    """An instance's network policy (the seed's ``NetworkConfig``), enforced outside the sandbox."""

    egress: EgressPolicy = Field(default_factory=EgressPolicy)


class SnapshotStorage(FaaSModel):
    """Disk a snapshot's image takes (docs/storage.md); only in ``get`` and ``list`` answers."""

    deduplicated: bool
    materialized: bool
    materialized_bytes: int = 0
    logical_bytes: Optional[int] = None
    #: Bytes of its chunks other stored images also hold.
    shared_bytes: Optional[int] = None
    #: Bytes of its chunks no other stored image holds (about what deleting it frees).
    exclusive_bytes: Optional[int] = None


class StepResult(FaaSModel):
    """The recorded result of the exec step that made a snapshot (output up to the engine's cap)."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    #: Milliseconds the original run took.
    duration: int = 0
    truncated: bool = False


class SnapshotData(FaaSModel):
    """Fields of a snapshot. Use :class:`faas_sdk.Snapshot`, which adds the chaining methods."""

    id: str
    parent_id: Optional[str] = None
    image_id: str
    instance_id: Optional[str] = None
    name: Optional[str] = None
    digest: str
    checksum: Optional[str] = None  # null briefly after a checkpoint of a running instance
    size: int
    resources: Resources
    network_config: NetworkConfig = Field(default_factory=NetworkConfig)
    environment: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: str
    expires_at: Optional[str] = None
    #: In the answer of a create or a step: True when the step cache answered and nothing ran.
    cached: Optional[bool] = None
    #: In the answer of an exec step: what the run that made it did (recorded; the same on a hit).
    step_result: Optional[StepResult] = None
    storage: Optional[SnapshotStorage] = None


class SnapshotPool(FaaSModel):
    snapshot_id: str
    min_instances: int
    max_instances: Optional[int] = None
    ready: int
    live: int = 0


class InstanceNetwork(FaaSModel):
    ip: Optional[str] = None


class InstanceEndpoints(FaaSModel):
    agent: Optional[str] = None


class WakeOn(FaaSModel):
    """What resumes a paused instance: a request to one of its HTTP services, an SSH connection."""

    http: bool = False
    ssh: bool = False


class ServiceEndpoint(FaaSModel):
    """An HTTP service of an instance behind the engine's proxy (``client.network.expose_http``)."""

    name: str
    port: int
    url: str
    auth: Literal["api-key", "token", "none"]
    #: For ``auth="token"``: ``url`` with a fresh signed link token, for browsers; None otherwise.
    token_url: Optional[str] = None
    token_expires_at: Optional[str] = None
    created_at: str


class InstanceData(FaaSModel):
    """Fields of an instance. Use :class:`faas_sdk.Instance`, which adds the lifecycle methods."""

    id: str
    snapshot_id: str
    parent_instance_id: Optional[str] = None
    state: InstanceState
    error: Optional[str] = None
    resources: Resources
    network_config: NetworkConfig = Field(default_factory=NetworkConfig)
    network: InstanceNetwork = Field(default_factory=InstanceNetwork)
    endpoints: InstanceEndpoints = Field(default_factory=InstanceEndpoints)
    metadata: dict[str, str] = Field(default_factory=dict)
    ttl: Optional[int] = None
    ttl_action: str = "stop"
    auto_stop: bool = False
    created_at: str
    ready_at: Optional[str] = None
    stopped_at: Optional[str] = None
    wake_on: WakeOn = Field(default_factory=WakeOn)
    services: list[ServiceEndpoint] = Field(default_factory=list)


class CpuUsage(FaaSModel):
    usage_seconds: float
    vcpus: int


class MemoryUsage(FaaSModel):
    usage_bytes: int
    limit_bytes: int
    peak_bytes: int


class ProcessCount(FaaSModel):
    count: int


class DiskUsage(FaaSModel):
    used_bytes: int


class NetworkUsage(FaaSModel):
    rx_bytes: int
    tx_bytes: int


class InstanceMetrics(FaaSModel):
    instance_id: str
    timestamp: str
    cpu: CpuUsage
    memory: MemoryUsage
    processes: ProcessCount
    disk: DiskUsage
    network: NetworkUsage


class InstanceLogEntry(FaaSModel):
    """One piece of the instance log: output of a background process (``stdout``/``stderr``) or a
    line the agent wrote when the process started or exited (``agent``)."""

    seq: int
    time: str
    pid: int
    stream: str
    data: str


class InstanceLogs(FaaSModel):
    """Entries oldest first; pass ``next_seq`` as ``since`` to read only newer ones."""

    entries: list[InstanceLogEntry]
    next_seq: int


class ExecutionResult(FaaSModel):
    exit_code: int
    signal: Optional[str] = None
    stdout: str = ""
    stderr: str = ""
    #: Milliseconds.
    duration: int = 0
    timed_out: bool = False
    truncated: bool = False
    #: Set when the call also snapshotted the instance (``exec_with_snapshot``, target-less exec).
    snapshot_id: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class ExecEvent(FaaSModel):
    """One event of an exec stream: ``start`` (pid), ``stdout``/``stderr`` (data), ``exit``."""

    type: Literal["start", "stdout", "stderr", "exit"]
    pid: Optional[int] = None
    data: Optional[str] = None
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    duration: Optional[int] = None
    timed_out: Optional[bool] = None


class FileInfo(FaaSModel):
    name: str
    path: str
    type: Literal["file", "directory", "symlink", "other"]
    size: int
    mode: int
    mtime: str
    symlink_target: Optional[str] = None


class TransferResult(FaaSModel):
    files: int
    bytes: int


class ProcessInfo(FaaSModel):
    pid: int
    tag: Optional[str] = None
    argv: list[str] = Field(default_factory=list)
    command: Optional[str] = None
    cwd: Optional[str] = None
    state: Literal["running", "exited"]
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    started_at: str
    exited_at: Optional[str] = None


class ProcessOutput(FaaSModel):
    """One event of a process output stream: ``stdout``/``stderr`` chunk, ``dropped``, ``exit``."""

    type: Literal["stdout", "stderr", "dropped", "exit"]
    seq: Optional[int] = None
    data: Optional[str] = None
    from_: Optional[int] = Field(default=None, alias="from")
    to: Optional[int] = None
    exit_code: Optional[int] = None
    signal: Optional[str] = None


class Event(FaaSModel):
    id: str
    seq: int
    type: str
    resource_id: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: str


class BranchResultData(FaaSModel):
    """Base of :class:`faas_sdk.BranchResult` (whose fields are the bound Snapshot/Instance)."""


class BranchData(FaaSModel):
    """Fields of a branch. Use :class:`faas_sdk.Branch`, which adds checkout/commit/delete."""

    id: str
    name: str
    parent_id: Optional[str] = None
    divergence_point: str
    head: str
    instance_id: Optional[str] = None  # the live checked-out instance, or None
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: str


class TimelineEntry(FaaSModel):
    """One checkpoint of an instance's timeline (``client.state.timeline``), oldest first."""

    snapshot_id: str
    name: Optional[str] = None
    created_at: str
    instance_id: Optional[str] = None
    inherited: bool


class SshKey(FaaSModel):
    """An SSH public key registered for the gateway, owned by the API key ``key_id``."""

    id: str
    name: str
    algorithm: str
    #: ``SHA256:…``, as ``ssh-keygen -lf`` prints it.
    fingerprint: str
    public_key: str
    key_id: str
    created_at: str


class SshHostKey(FaaSModel):
    algorithm: str
    public_key: str
    fingerprint: str


class SshHost(FaaSModel):
    """Where the SSH gateway listens and its host key."""

    enabled: bool
    host: str
    port: int
    host_key: SshHostKey


class SSHExecResult(FaaSModel):
    """What ``exec_command`` returns; ``signal`` (e.g. ``SIGKILL``, ``exit_code`` None) when it died of one."""

    stdout: str
    stderr: str
    exit_code: Optional[int]
    signal: Optional[str]
