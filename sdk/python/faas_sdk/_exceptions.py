"""The SDK's error tree.

Every engine error arrives as ``{"error": {code, message, details, requestId}}``. The class is
chosen from ``code`` through :data:`ERROR_CLASSES`, the one table (never from the message, which
is not stable). Class names match tests/conformance/README.md so both SDKs raise the same ones;
Python spells ``TimeoutError`` as :class:`FaaSTimeoutError` to avoid shadowing the builtin.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = [
    "FaaSError",
    "ParallelError",
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
    "ServiceNotFoundError",
    "ServiceUnreachableError",
    "InstanceNotReadyError",
    "ConflictError",
    "MergeConflictError",
    "NoCheckpointError",
    "PayloadTooLargeError",
    "ExecFailedError",
    "ResourceLimitError",
    "FaaSTimeoutError",
    "RuntimeFailureError",
    "InternalError",
    "NetworkError",
    "ERROR_CLASSES",
    "error_from_body",
]


class FaaSError(Exception):
    """Base of every error the SDK raises on purpose. Branch on ``code`` or on the subclass."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status_code: int | None = None,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: Stable snake_case code from the engine (``instance_not_found``…) or ``network_error``.
        self.code = code
        #: HTTP status of the response, when there was one.
        self.status_code = status_code
        #: Machine-readable context (``state``, ``exitCode``, ``field``…), or None.
        self.details: dict[str, Any] | None = dict(details) if details is not None else None
        #: The engine's X-Request-Id; quote it in bug reports.
        self.request_id = request_id
        #: Seconds the engine asked us to wait (Retry-After), when it sent one.
        self.retry_after = retry_after

    def __str__(self) -> str:
        suffix = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{suffix}"


class InvalidRequestError(FaaSError):
    pass


class UnauthorizedError(FaaSError):
    pass


class TokenExpiredError(UnauthorizedError):
    """A session token's ``expiresAt`` has passed (clients with ``use_session_tokens`` refresh it themselves)."""


class KeyRevokedError(UnauthorizedError):
    """The API key (or the key a token was minted from) has been revoked."""


class ForbiddenError(FaaSError):
    """The key is valid but may not do this (key management needs an admin key; tokens cannot mint)."""


class NotFoundError(FaaSError):
    """Base of every "does not exist" error; raised alone for an unknown route (``not_found``)."""


class ImageNotFoundError(NotFoundError):
    pass


class SnapshotNotFoundError(NotFoundError):
    pass


class InstanceNotFoundError(NotFoundError):
    pass


class BranchNotFoundError(NotFoundError):
    pass


class ProcessNotFoundError(NotFoundError):
    pass


class FileNotFoundError(NotFoundError):  # noqa: A001 - the conformance name; import it qualified
    pass


class ServiceNotFoundError(NotFoundError):
    """The instance exposes no HTTP service of that name."""


class ServiceUnreachableError(FaaSError):
    """The engine's proxy reached the instance but nothing accepts connections on the service's port (502)."""


class InstanceNotReadyError(FaaSError):
    """The instance's state does not allow the call; ``details["state"]`` holds it."""


class ConflictError(FaaSError):
    pass


class MergeConflictError(ConflictError):
    """A merge found paths changed on both sides; :attr:`conflicts` lists each path, its ``kind``
    (modify/modify, add/add, modify/delete, delete/modify, typeChange) and the sides."""

    @property
    def conflicts(self) -> list[dict[str, Any]]:
        details = self.details if isinstance(self.details, dict) else {}
        found = details.get("conflicts")
        return list(found) if isinstance(found, list) else []
class NoCheckpointError(ConflictError):
    """A rollback (or restart ``from_latest_checkpoint``) has no checkpoint that far back; ``details["available"]`` says how many there are."""


class PayloadTooLargeError(FaaSError):
    pass


class ExecFailedError(FaaSError):
    """A snapshot step exited non-zero; ``details`` = ``{exitCode, stdout, stderr}``."""


class ResourceLimitError(FaaSError):
    """Too much asked of the host (422) or too many things at once (429, with ``retry_after``)."""


class FaaSTimeoutError(FaaSError):
    """A wait reached its ``timeout`` (409) or an engine-side operation hit its limit (504). Not the client's own timeout."""


class RuntimeFailureError(FaaSError):
    """The sandbox runtime (gVisor runsc) failed; ``details`` carries its message."""


class InternalError(FaaSError):
    pass


class NetworkError(FaaSError):
    """No answer from the engine: connection refused/reset, or the client-side timeout."""


class SSHError(FaaSError):
    """The SSH gateway refused or broke a session (SSHClient); ``code`` is ``ssh_error``."""


class SSHAuthenticationError(SSHError):
    """The SSH gateway did not accept the credential (API key or private key); ``code`` is ``ssh_auth_failed``."""


class ParallelError(FaaSError):
    """Every task of a parallel operation failed (``parallel.race``): ``errors`` holds each task's
    error, in task order. Same class and fields in the TypeScript SDK. Code ``parallel_failed``
    (client-side only)."""

    def __init__(self, message: str, errors: list[BaseException]) -> None:
        super().__init__(message, code="parallel_failed")
        self.errors = errors


#: THE table: engine ``code`` -> class. A code missing here falls back to :class:`FaaSError`.
ERROR_CLASSES: dict[str, type[FaaSError]] = {
    "invalid_request": InvalidRequestError,
    "unauthorized": UnauthorizedError,
    "token_expired": TokenExpiredError,
    "key_revoked": KeyRevokedError,
    "forbidden": ForbiddenError,
    "image_not_found": ImageNotFoundError,
    "snapshot_not_found": SnapshotNotFoundError,
    "instance_not_found": InstanceNotFoundError,
    "branch_not_found": BranchNotFoundError,
    "process_not_found": ProcessNotFoundError,
    "file_not_found": FileNotFoundError,
    "service_not_found": ServiceNotFoundError,
    "service_unreachable": ServiceUnreachableError,
    "not_found": NotFoundError,
    # The SDK never sends a method the spec does not list; a 405 means the route is not there.
    "method_not_allowed": NotFoundError,
    "instance_not_ready": InstanceNotReadyError,
    "conflict": ConflictError,
    # Conflicts with a branch: ``code`` says which (details name / children / id).
    "branch_name_taken": ConflictError,
    "branch_has_children": ConflictError,
    "branch_not_checked_out": ConflictError,
    "merge_conflict": MergeConflictError,
    # A snapshot without a record of its file changes (details reason).
    "diff_unavailable": ConflictError,
    "no_checkpoint": NoCheckpointError,
    "payload_too_large": PayloadTooLargeError,
    "exec_failed": ExecFailedError,
    "resource_limit": ResourceLimitError,
    "timeout": FaaSTimeoutError,
    "runtime_error": RuntimeFailureError,
    "internal": InternalError,
    # Nothing in the instance listens on a forwarded port: a network failure, on the instance's side.
    "port_not_listening": NetworkError,
    # The engine's disk is full (507): a host resource ran out; nothing was stored (docs/storage.md).
    "storage_full": ResourceLimitError,
    # A stored image failed its checksum at restore: the runtime refused it (details chunk).
    "image_corrupt": RuntimeFailureError,
}


def error_from_body(
    body: object,
    status_code: int | None = None,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> FaaSError:
    """Builds the right subclass from an error body (an HTTP response or an SSE ``error`` event).

    ``body`` may be the envelope ``{"error": {...}}`` or the inner object.
    """
    inner: Mapping[str, Any] = {}
    if isinstance(body, Mapping):
        candidate = body.get("error", body)
        inner = candidate if isinstance(candidate, Mapping) else {}
    code = inner.get("code")
    if not isinstance(code, str):
        code = f"http_{status_code}" if status_code else "unknown"
    message = inner.get("message")
    if not isinstance(message, str):
        message = f"engine answered HTTP {status_code if status_code is not None else '?'}"
    details = inner.get("details")
    body_request_id = inner.get("requestId")
    cls = ERROR_CLASSES.get(code, FaaSError)
    return cls(
        message,
        code=code,
        status_code=status_code,
        details=details if isinstance(details, Mapping) else None,
        request_id=body_request_id if isinstance(body_request_id, str) else request_id,
        retry_after=retry_after,
    )
