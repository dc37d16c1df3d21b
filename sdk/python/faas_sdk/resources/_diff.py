"""Requests of diff, merge and rebase, shared by the sync and async resources (snapshots, branches).

Memory and processes are never merged: a merge result has the first side's, a rebase result the
target's (docs/architecture.md "Diff and merge").
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from .._base_client import APIRequest, drop_none
from .._ids import IdRef, id_of


def diff_request(kind: str, base: IdRef, target: IdRef, text_diffs: Optional[bool]) -> APIRequest:
    params = drop_none({"textDiffs": None if text_diffs is None else ("true" if text_diffs else "false")})
    return APIRequest("GET", f"/v1/{kind}/{id_of(base)}/diff/{id_of(target)}", params=params or None)


def merge_request(
    kind: str,
    ids: Sequence[IdRef],
    strategy: Any,
    name: Optional[str],
    message: Optional[str],
    metadata: Optional[Mapping[str, str]],
) -> APIRequest:
    field = "snapshotIds" if kind == "snapshots" else "branchIds"
    body = drop_none(
        {
            field: [id_of(i) for i in ids],
            "strategy": strategy,
            "name": name,
            "message": message,
            "metadata": dict(metadata) if metadata is not None else None,
        }
    )
    return APIRequest("POST", f"/v1/{kind}/merge", json=body)


def rebase_request(branch: IdRef, target: IdRef, strategy: Any) -> APIRequest:
    return APIRequest("POST", f"/v1/branches/{id_of(branch)}/rebase", json=drop_none({"targetId": id_of(target), "strategy": strategy}))
