"""faas Python SDK: snapshot sandboxed Linux instances and live-branch them into running copies.

    from faas_sdk import FaaSClient

    with FaaSClient() as client:
        snapshot = client.snapshots.create().exec("echo ready > /etc/motd")
        with client.instances.start(snapshot) as instance:
            print(instance.exec("cat /etc/motd").stdout)
"""

from ._bound import Branch, BranchResult, Instance, Snapshot
from ._client import AsyncFaaSClient, FaaSClient
from ._exceptions import (
    ERROR_CLASSES,
    ConflictError,
    MergeConflictError,
    NoCheckpointError,
    ExecFailedError,
    FaaSError,
    FaaSTimeoutError,
    FileNotFoundError,
    ImageNotFoundError,
    InstanceNotFoundError,
    BranchNotFoundError,
    InstanceNotReadyError,
    InternalError,
    InvalidRequestError,
    NetworkError,
    SSHAuthenticationError,
    SSHError,
    NotFoundError,
    PayloadTooLargeError,
    ProcessNotFoundError,
    ResourceLimitError,
    RuntimeFailureError,
    SnapshotNotFoundError,
    UnauthorizedError,
    TokenExpiredError,
    KeyRevokedError,
    ForbiddenError,
    ServiceNotFoundError,
    ServiceUnreachableError,
)
from ._managed import AsyncManagedInstance, ManagedInstance
from .resources.parallel import RaceResult
from .resources.processes import AsyncProcessHandle, ProcessHandle
from .resources.snapshots import SnapshotChain
from ._cache import CacheConfig
from ._config import OptimizationHints
from .resources._streams import AsyncExecStream, ExecStream
from .resources.terminals import AsyncTerminal, Terminal
from .types.diff import BranchDiff, DiffTotals, FileChange, SnapshotDiff
from .resources.port_forwards import AsyncPortForward, AsyncTunnel, PortForward, Tunnel
from .resources.ssh import AsyncSSHClient, AsyncSSHShell, SSHClient, SSHShell
from .types import (
    Event,
    ExecEvent,
    ExecutionResult,
    FileInfo,
    Image,
    ApiKey,
    CreatedKey,
    Token,
    SshKey,
    SshHost,
    SSHExecResult,
    InstanceMetrics,
    EgressPolicy,
    NetworkConfig,
    ProcessInfo,
    ProcessOutput,
    TimelineEntry,
    TransferResult,
    StepResult,
    ServiceEndpoint,
    WakeOn,
)

__version__ = "0.1.0"

__all__ = [
    "MergeConflictError",
    "BranchDiff",
    "SnapshotDiff",
    "FileChange",
    "DiffTotals",
    "FaaSClient",
    "AsyncFaaSClient",
    "Snapshot",
    "Instance",
    "BranchResult",
    "Branch",
    "ManagedInstance",
    "AsyncManagedInstance",
    "SnapshotChain",
    "OptimizationHints",
    "CacheConfig",
    "StepResult",
    "ExecStream",
    "AsyncExecStream",
    "ProcessHandle",
    "AsyncProcessHandle",
    "Terminal",
    "AsyncTerminal",
    "PortForward",
    "AsyncPortForward",
    "Tunnel",
    "AsyncTunnel",
    "RaceResult",
    "Event",
    "ExecEvent",
    "ExecutionResult",
    "FileInfo",
    "Image",
    "ApiKey",
    "CreatedKey",
    "Token",
    "ServiceEndpoint",
    "WakeOn",
    "ServiceNotFoundError",
    "ServiceUnreachableError",
    "InstanceMetrics",
    "EgressPolicy",
    "NetworkConfig",
    "ProcessInfo",
    "ProcessOutput",
    "TransferResult",
    "ERROR_CLASSES",
    "FaaSError",
    "InvalidRequestError",
    "UnauthorizedError",
    "TokenExpiredError",
    "KeyRevokedError",
    "ForbiddenError",
    "NotFoundError",
    "ImageNotFoundError",
    "SnapshotNotFoundError",
    "InstanceNotFoundError",
    "BranchNotFoundError",
    "ProcessNotFoundError",
    "FileNotFoundError",
    "InstanceNotReadyError",
    "ConflictError",
    "NoCheckpointError",
    "TimelineEntry",
    "PayloadTooLargeError",
    "ExecFailedError",
    "ResourceLimitError",
    "FaaSTimeoutError",
    "RuntimeFailureError",
    "InternalError",
    "NetworkError",
    "SSHError",
    "SSHAuthenticationError",
    "SSHClient",
    "SshKey",
    "SshHost",
    "SSHExecResult",
    "AsyncSSHClient",
    "SSHShell",
    "AsyncSSHShell",
]
