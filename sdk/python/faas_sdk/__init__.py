"""faas Python SDK: snapshot sandboxed Linux instances and live-branch them into running copies.

    from faas_sdk import FaaSClient

    with FaaSClient() as client:
        snapshot = client.snapshots.create().exec("echo ready > /etc/motd")
        with client.instances.start(snapshot) as instance:
            print(instance.exec("cat /etc/motd").stdout)
"""

from ._bound import BranchResult, Instance, Snapshot
from ._client import AsyncFaaSClient, FaaSClient
from ._exceptions import (
    ERROR_CLASSES,
    ConflictError,
    ExecFailedError,
    FaaSError,
    FaaSTimeoutError,
    FileNotFoundError,
    ImageNotFoundError,
    InstanceNotFoundError,
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
)
from ._managed import AsyncManagedInstance, ManagedInstance
from .resources.parallel import RaceResult
from .resources.processes import AsyncProcessHandle, ProcessHandle
from .resources.snapshots import SnapshotChain
from .resources._streams import AsyncExecStream, ExecStream
from .resources.terminals import AsyncTerminal, Terminal
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
    ProcessInfo,
    ProcessOutput,
    TransferResult,
)

__version__ = "0.1.0"

__all__ = [
    "FaaSClient",
    "AsyncFaaSClient",
    "Snapshot",
    "Instance",
    "BranchResult",
    "ManagedInstance",
    "AsyncManagedInstance",
    "SnapshotChain",
    "ExecStream",
    "AsyncExecStream",
    "ProcessHandle",
    "AsyncProcessHandle",
    "Terminal",
    "AsyncTerminal",
    "RaceResult",
    "Event",
    "ExecEvent",
    "ExecutionResult",
    "FileInfo",
    "Image",
    "ApiKey",
    "CreatedKey",
    "Token",
    "InstanceMetrics",
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
    "ProcessNotFoundError",
    "FileNotFoundError",
    "InstanceNotReadyError",
    "ConflictError",
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
