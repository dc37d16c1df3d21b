"""schemathesis hooks for the faas engine (loaded by run.py through SCHEMATHESIS_HOOKS).

Four jobs, none of which hides a defect:
- bodies of `application/x-tar`: the generated value becomes the content of a one-file archive, so
  the tar routes get archives rather than an error from schemathesis (it has no tar serializer);
- keep generated calls bounded in time: waits and command timeouts are schema-valid up to an
  hour; a valid value above a few seconds is lowered to another valid value, so a positive case
  stays positive and a negative one stays negative;
- two checks of our own: every error is the envelope whose requestId is the X-Request-Id header,
  and, in the run without a key, every route but /v1/health answers 401 `unauthorized`;
- failures that are not defects (schemathesis cannot speak WebSocket or know a sandbox's files,
  answers Node gives before routing) are set aside — not dropped silently: each one is written to
  FAAS_SCHEMATHESIS_TOLERATED and reported by run.py with its reason; see KNOWN below.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

import schemathesis

MODE = os.environ.get("FAAS_SCHEMATHESIS_MODE", "key")  # "key" or "anonymous"
TOLERATED_LOG = os.environ.get("FAAS_SCHEMATHESIS_TOLERATED")

# Milliseconds. The spec allows up to an hour; a fuzzer that asks for that stalls the run.
MAX_WAIT_MS = 2000
WAIT_QUERY = {"waitInstance": "timeout", "waitProcess": "timeout"}
TIMEOUT_BODIES = {"exec", "execStream", "execScript", "execSnapshot", "startProcess", "execBatch"}


def _cap(value: Any) -> Any:
    # Query values may come as text ("30000"); keep the form, lower the number.
    if isinstance(value, str) and value.isdigit() and MAX_WAIT_MS < int(value) <= 3_600_000:
        return str(MAX_WAIT_MS)
    # 645.0 is an integer to JSON Schema too; only valid values are lowered.
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
    if number and MAX_WAIT_MS < value <= 3_600_000:
        return MAX_WAIT_MS
    return value


CALL_LOG = os.environ.get("FAAS_SCHEMATHESIS_CALL_LOG")


def _log_call(what: str, case: Any) -> None:
    # Diagnosis only (unset in CI): which call was in flight when a run stalls.
    if CALL_LOG:
        with open(CALL_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps({"t": __import__("time").time(), "what": what, "op": f"{case.method} {case.formatted_path}",
                                  "query": repr(case.query)[:300], "body": repr(case.body)[:300]}) + "\n")


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    _log_call(f"done {response.status_code}", case)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    _log_call("send", case)
    op = str((case.operation.definition.raw or {}).get("operationId", ""))
    name = WAIT_QUERY.get(op)
    if name:
        # Omitted, the wait is 30 s (waitInstance) or until the exit (waitProcess): give it one.
        if case.query is None:
            case.query = {}
        if isinstance(case.query, dict):
            case.query[name] = _cap(case.query.get(name, MAX_WAIT_MS))
    if op in TIMEOUT_BODIES and isinstance(case.body, dict):
        if "timeout" in case.body:
            case.body["timeout"] = _cap(case.body["timeout"])
        for item in case.body.get("commands", []) if isinstance(case.body.get("commands"), list) else []:
            if isinstance(item, dict) and "timeout" in item:
                item["timeout"] = _cap(item["timeout"])


@schemathesis.serializer("application/x-tar")
def tar_serializer(ctx: Any, value: Any) -> bytes:
    if not isinstance(value, (str, bytes)):
        # A negative case (a number, an object where the spec says a binary string) goes as its
        # JSON text, which is no archive, so the engine must refuse it (400): wrapped into a valid
        # archive like any value, it was accepted, and schemathesis rightly flagged that.
        return json.dumps(value, default=str).encode()
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("schemathesis.txt")
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


@schemathesis.check
def error_envelope_matches_request_id(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is the one envelope, and its requestId is this response's X-Request-Id."""
    request_id = response.headers.get("x-request-id") or response.headers.get("X-Request-Id")
    if isinstance(request_id, list):
        request_id = request_id[0] if request_id else None
    if not request_id:
        raise AssertionError("response without X-Request-Id")
    if response.status_code < 400:
        return None
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not {"code", "message", "details", "requestId"} <= set(error):
        raise AssertionError(f"{response.status_code} answer is not the error envelope: {response.content[:200]!r}")
    if error["requestId"] != request_id:
        raise AssertionError(f"error.requestId {error['requestId']} differs from X-Request-Id {request_id}")
    return None


@schemathesis.check
def anonymous_calls_are_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """Without a key, every route the spec does not declare public (`security: []`: the health
    check, the login page and form, the dashboard's static assets) answers 401 `unauthorized`."""
    if MODE != "anonymous" or case.path == "/v1/health":
        return None
    if (case.operation.definition.raw or {}).get("security") == []:
        return None
    # An unsupported method never reaches a route; 405 tells nothing about the resource.
    if response.status_code == 405 and case.method.upper() not in {"GET", "POST", "PUT", "DELETE"}:
        return None
    body = _json(response)
    code = body.get("error", {}).get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    if response.status_code != 401 or code != "unauthorized":
        raise AssertionError(f"{case.method} {case.path} without a key answered {response.status_code} {code}, not 401 unauthorized")
    return None


# ---------------------------------------------------------------------------------------------
# Known failures owned by another helper of issue 12 (the "hardening" helper unless noted).
# Each entry: (owner, what, predicate(failure, case, response)). Remove an entry when its fix lands.


def _body_text(case: Any) -> str:
    try:
        return json.dumps(case.body)
    except (TypeError, ValueError):
        return repr(case.body)


def _message(failure: Any) -> str:
    return f"{getattr(failure, 'title', '')} {getattr(failure, 'message', '')}"


def _label(case: Any) -> str:
    return f"{case.operation.method.upper()} {case.operation.path}"


KNOWN: list[tuple[str, str, Any]] = [
    # Answered by Node before any route exists: documented once at the top of the spec (with the
    # envelope and X-Request-Id), not per operation, so the per-operation status check flags them.
    ("schemathesis", "414/431 are answered before routing (documented at the spec's top, not per operation)",
     lambda f, c, r: r.status_code in (414, 431) and _json(r) is not None and "error" in (_json(r) or {})),
    # Not defects: answers that depend on what schemathesis cannot know or speak.
    ("schemathesis", "the terminal is a WebSocket; a plain GET is told to upgrade (400)",
     lambda f, c, r: _label(c) == "GET /v1/instances/{id}/terminal" and r.status_code == 400
     and b"this route is a WebSocket" in (r.content or b"")),
    ("schemathesis", "tunnels are WebSockets; a plain GET is told to upgrade (400)",
     lambda f, c, r: _label(c).startswith("GET /v1/instances/{id}/tunnels/") and r.status_code == 400
     and b"this route is a WebSocket" in (r.content or b"")),
    ("schemathesis", "a port forward probe to a port where nothing in the instance listens (502)",
     lambda f, c, r: _label(c) == "GET /v1/instances/{id}/tcp/{port}" and r.status_code == 502
     and (_json(r) or {}).get("error", {}).get("code") == "port_not_listening"),
    ("schemathesis", "an archive schemathesis makes is not a root filesystem (no /bin or /usr), so the import refuses it",
     lambda f, c, r: _label(c) == "POST /v1/images/import" and r.status_code == 400
     and b"does not look like a root filesystem" in (r.content or b"")),
    ("schemathesis", "a stateful link carried a null field (e.g. a root snapshot's instanceId) into a path as 'None'",
     lambda f, c, r: r.status_code == 400 and any(v is None for v in (c.path_parameters or {}).values())),
    ("schemathesis", "a stateful link carried an id of another kind into a path (a branch id into /v1/instances/{id}); the 400 says which kind of id it expects",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and r.status_code == 400 and _path_pattern_refusal(r)),
    ("schemathesis", "a documented rule (spec, top): no string but stdin may hold a NUL byte; 400 naming the field",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and r.status_code == 400
     and b"contains a NUL byte" in (r.content or b"")),
    ("schemathesis", "a documented constraint JSON Schema cannot state: maxInstances >= minInstances, diskSize = the snapshot's",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and r.status_code == 400
     and _error_field(r) in ("/maxInstances", "/resources/diskSize")),
    # A query string carries text only: a `metadata[k]=true` schemathesis generated from a boolean
    # (or a number) arrives as the string "true", which the schema allows. Only values whose text is
    # itself valid (a string of at most 1024 characters) are set aside; a too-long value stays a failure.
    ("schemathesis", "a non-string metadata filter value reaches the engine as its text, a valid string",
     lambda f, c, r: "Schema-violating request accepted" in _message(f) and "`metadata` in query" in _message(f)
     and _only_text_violations((c.query or {}).get("metadata"))),
    # Rules the spec states in prose, where the engine's 400 says what to change (a schema
    # pattern would replace those messages with a generic one): an egress entry must be an IPv4
    # address, an IPv4 CIDR with host bits zero or a host name; a public key must decode to a key
    # of the type it names; `names` of a branch has one name per new instance.
    ("schemathesis", "an egress entry that is not an IPv4 address, CIDR or host name (documented in EgressTarget; the 400 says what to change)",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and r.status_code == 400
     and str(_error_field(r) or "").startswith("/networkConfig/")),
    ("schemathesis", "a public key string that is not an OpenSSH public key (documented on publicKey; the 400 says how to get one)",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and _label(c) == "POST /v1/ssh-keys" and r.status_code == 400
     and _error_field(r) == "publicKey"),
    ("schemathesis", "branch names: one per new instance, each different (documented on names)",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and _label(c) == "POST /v1/instances/{id}/branch"
     and r.status_code == 400 and _error_field(r) == "/names"),
    ("schemathesis", "a file path valid in form but not in the sandbox's filesystem (a directory to write, / to remove, a read-only mount)",
     lambda f, c, r: "Schema-valid request rejected" in _message(f) and r.status_code == 400 and _semantic_refusal(r)
     and ("/files/" in _label(c) or _label(c) == "POST /v1/snapshots/{id}/upload")),
]


def _only_text_violations(metadata: Any) -> bool:
    """Every value would be a valid filter string once written into a query string."""
    if not isinstance(metadata, dict) or not metadata:
        return False
    def text(v: Any) -> str | None:
        if v is None:
            return "null"  # a query string carries it as text (empty or "null"), a valid string
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float, str)):
            return str(v)
        return None  # an object or list has no single text form: a real violation
    texts = [text(v) for v in metadata.values()]
    return any(not isinstance(v, str) for v in metadata.values()) and all(t is not None and len(t) <= 1024 for t in texts)


def _path_pattern_refusal(response: Any) -> bool:
    """The engine refused a path parameter for its pattern (an id of the wrong kind), nothing else.
    The message starts with the field ("params/id: expected an instance id …", no regex since
    issue 16); details.in == "params" and details.errors[].keyword == "pattern" say it for programs."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    errors = details.get("errors") if isinstance(details, dict) else None
    return (isinstance(error, dict) and str(error.get("message", "")).startswith("params/")
            and isinstance(errors, list) and details.get("in", "params") == "params" and bool(errors) and all(isinstance(e, dict) and e.get("keyword") == "pattern" for e in errors))


def _error_field(response: Any) -> Any:
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return details.get("field") if isinstance(details, dict) else None


def _semantic_refusal(response: Any) -> bool:
    """A 400 that is not a schema rejection: the agent refused the path for what it is on disk."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return isinstance(error, dict) and not (isinstance(details, dict) and "errors" in details)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    for owner, what, matches in KNOWN:
        try:
            hit = bool(matches(failure, case, response))
        except Exception:  # a predicate that cannot judge this failure does not match it
            hit = False
        if hit:
            if TOLERATED_LOG:
                with open(TOLERATED_LOG, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"owner": owner, "what": what, "operation": _label(case),
                                          "status": response.status_code, "failure": _message(failure)[:300]}) + "\n")
            return False
    return True
