"""How a command and its options become a request body (shared by exec, snapshot steps and
background processes). Python callers give timeouts in seconds; the API takes milliseconds."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

#: A shell command line (run as ``/bin/sh -c``) or an argv list (run without a shell).
Command = Union[str, Sequence[str]]

#: Seconds the engine lets a command run when no timeout is given (the API's default, 300 000 ms).
ENGINE_DEFAULT_COMMAND_TIMEOUT = 300.0
#: Extra seconds the HTTP request waits beyond the command's own timeout, so the engine's
#: ``timedOut: true`` answer arrives instead of a client-side timeout.
REQUEST_MARGIN = 30.0


def command_body(
    command: Command,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    stdin: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command} if isinstance(command, str) else {"argv": list(command)}
    if cwd is not None:
        body["cwd"] = cwd
    if env is not None:
        body["env"] = dict(env)
    if user is not None:
        body["user"] = user
    if stdin is not None:
        body["stdin"] = stdin
    if timeout is not None:
        body["timeout"] = to_millis(timeout)
    return body


def to_millis(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


def request_timeout(command_timeout: float | None, client_timeout: float) -> float:
    """The HTTP timeout for a call that waits for a command to finish."""
    allowed = ENGINE_DEFAULT_COMMAND_TIMEOUT if command_timeout is None else command_timeout
    return max(client_timeout, allowed + REQUEST_MARGIN)
