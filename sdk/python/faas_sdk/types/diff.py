"""Diff and merge results: :class:`BranchDiff` (also :data:`SnapshotDiff`), :class:`FileChange`."""

from __future__ import annotations

import base64
from typing import Any, Literal, Optional, Union

from . import FaaSModel

__all__ = ["BranchDiff", "SnapshotDiff", "FileChange", "DiffTotals", "MergeStrategy"]

#: ``"fail"`` (default: MergeConflictError), ``"ours"``, ``"theirs"``, or per path
#: ``{"paths": {"/p": "theirs"}, "default": "fail"}``.
MergeStrategy = Union[Literal["fail", "ours", "theirs"], dict[str, Any]]


class FileChange(FaaSModel):
    """One changed path. ``path_base64`` holds the exact bytes when they are not valid UTF-8."""

    path: str
    path_base64: Optional[str] = None
    change: Literal["added", "modified", "deleted", "typeChanged"]
    type: str
    type_before: Optional[str] = None
    type_after: Optional[str] = None
    mode_before: Optional[int] = None
    mode_after: Optional[int] = None
    size_before: Optional[int] = None
    size_after: Optional[int] = None
    sha256_before: Optional[str] = None
    sha256_after: Optional[str] = None
    symlink_target_before: Optional[str] = None
    symlink_target_after: Optional[str] = None
    diff: Optional[str] = None
    diff_omitted: Optional[str] = None
    insertions: int = 0
    deletions: int = 0

    @property
    def path_bytes(self) -> bytes:
        """The path's exact bytes."""
        return base64.b64decode(self.path_base64) if self.path_base64 is not None else self.path.encode()


class DiffTotals(FaaSModel):
    files: int
    added: int
    modified: int
    deleted: int
    type_changed: int
    insertions: int
    deletions: int


class BranchDiff(FaaSModel):
    """The file differences between two snapshots (or two branches' heads)."""

    base: str
    target: str
    files: list[FileChange]
    totals: DiffTotals


#: The seed's name for a diff of two snapshots: the same shape.
SnapshotDiff = BranchDiff
