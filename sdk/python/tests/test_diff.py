"""Diff and merge types and errors (the engine side is the shared conformance scenario diff-merge)."""

from __future__ import annotations

import base64

from faas_sdk import BranchDiff, ConflictError, ERROR_CLASSES, MergeConflictError
from faas_sdk._exceptions import error_from_body


def test_merge_conflict_maps_to_its_class_with_the_conflicts() -> None:
    assert ERROR_CLASSES["merge_conflict"] is MergeConflictError
    assert ERROR_CLASSES["diff_unavailable"] is ConflictError
    conflict = {"path": "/p", "kind": "add/add", "base": None, "ours": "snap_a", "theirs": "snap_b"}
    err = error_from_body({"code": "merge_conflict", "message": "m", "details": {"conflicts": [conflict]}, "requestId": "req_1"}, 409)
    assert isinstance(err, MergeConflictError) and isinstance(err, ConflictError)
    assert err.conflicts == [conflict]


def test_a_non_utf8_path_keeps_its_bytes() -> None:
    raw = b"/w/bad\xffname"
    change = {
        "path": raw.decode("utf-8", "replace"), "pathBase64": base64.b64encode(raw).decode(), "change": "added",
        "type": "file", "typeBefore": None, "typeAfter": "file", "modeBefore": None, "modeAfter": 420,
        "sizeBefore": None, "sizeAfter": 4, "sha256Before": None, "sha256After": "a" * 64,
        "symlinkTargetBefore": None, "symlinkTargetAfter": None, "diff": "--- /dev/null\n", "diffOmitted": None,
        "insertions": 1, "deletions": 0,
    }
    totals = {"files": 1, "added": 1, "modified": 0, "deleted": 0, "typeChanged": 0, "insertions": 1, "deletions": 0}
    diff = BranchDiff.model_validate({"base": "snap_a", "target": "snap_b", "files": [change], "totals": totals})
    assert diff.files[0].path_bytes == raw
    assert diff.totals.type_changed == 0
    assert diff.to_api()["files"][0]["pathBase64"] == change["pathBase64"]
