"""The seed's CacheConfig and the per-request form of OptimizationHints (docs/storage.md): how a
snapshot's image is stored and cached. Sent camelCase on ``snapshots.create``,
``instances.snapshot`` and ``instances.branch``; the engine's ``FAAS_CACHE_*`` fill what is unset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

from ._config import OptimizationHints

#: A CacheConfig, or a mapping with its fields (snake_case or camelCase keys).
CacheConfigParam = Union["CacheConfig", Mapping[str, Any]]
#: OptimizationHints, or a mapping with its fields (snake_case or camelCase keys).
HintsParam = Union[OptimizationHints, Mapping[str, Any]]





@dataclass(frozen=True)
class CacheConfig:
    """Every field optional (None: the engine's configuration)."""

    #: Store the image as content-addressed chunks shared with other images (engine default True).
    deduplication: bool | None = None
    #: Deflate level 0..9 of the chunks the image adds to the store (0: none).
    compression_level: int | None = None
    #: Bytes: the largest materialized copy of this image the cache keeps (0: never kept).
    cache_size: int | None = None
    #: Seconds the materialized copy is kept after its last restore (0: no limit).
    ttl: int | None = None
    #: Keep a materialized copy after the image is stored (engine default True).
    enable_snapshot_cache: bool | None = None


def policy_fields(client_hints: OptimizationHints, cache_config: CacheConfigParam | None, optimization_hints: HintsParam | None) -> dict[str, Any]:
    """``cacheConfig`` / ``optimizationHints`` request fields: the call's hints over the client's
    (``reuse_snapshots`` travels as ``fresh`` instead, see snapshots.py)."""
    out: dict[str, Any] = {}
    if isinstance(cache_config, Mapping):
        cache_config = CacheConfig(**{_snake(k): v for k, v in cache_config.items()})
    if isinstance(optimization_hints, Mapping):
        optimization_hints = OptimizationHints(**{_snake(k): v for k, v in optimization_hints.items()})
    if cache_config is not None:
        cc = {
            "deduplication": cache_config.deduplication,
            "compressionLevel": cache_config.compression_level,
            "cacheSize": cache_config.cache_size,
            "ttl": cache_config.ttl,
            "enableSnapshotCache": cache_config.enable_snapshot_cache,
        }
        cc = {k: v for k, v in cc.items() if v is not None}
        if cc:
            out["cacheConfig"] = cc
    hints: dict[str, Any] = {}
    for source in (client_hints, optimization_hints):
        if source is None:
            continue
        for attr, key in (("parallel_execution", "parallelExecution"), ("lazy_loading", "lazyLoading"), ("incremental_snapshots", "incrementalSnapshots")):
            value = getattr(source, attr)
            if value is not None:
                hints[key] = value
    if hints:
        out["optimizationHints"] = hints
    return out


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def reuse_of(client_hints: OptimizationHints, optimization_hints: HintsParam | None) -> bool:
    """The reuse_snapshots in force: the call's (when it says), else the client's."""
    if isinstance(optimization_hints, Mapping):
        value = optimization_hints.get("reuse_snapshots", optimization_hints.get("reuseSnapshots"))
        return client_hints.reuse_snapshots if value is None else bool(value)
    return (optimization_hints or client_hints).reuse_snapshots
