"""Accepting "an instance or its id" (or a snapshot or its id) everywhere."""

from __future__ import annotations

from typing import Protocol, Union


class HasId(Protocol):
    @property
    def id(self) -> str: ...


IdRef = Union[str, HasId]


def id_of(ref: IdRef) -> str:
    return ref if isinstance(ref, str) else ref.id


def is_snapshot_id(ref: IdRef) -> bool:
    return id_of(ref).startswith("snap_")
