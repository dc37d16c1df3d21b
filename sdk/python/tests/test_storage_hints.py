"""CacheConfig / OptimizationHints request fields (docs/storage.md): the call's hints over the
client's, mappings accepted, reuse_snapshots sent as ``fresh`` (not in ``optimizationHints``)."""

from faas_sdk import CacheConfig, OptimizationHints
from faas_sdk._cache import policy_fields, reuse_of


def test_cache_config_is_sent_camel_case_without_unset_fields() -> None:
    fields = policy_fields(OptimizationHints(), CacheConfig(compression_level=3, enable_snapshot_cache=False), None)
    assert fields == {"cacheConfig": {"compressionLevel": 3, "enableSnapshotCache": False}}


def test_call_hints_override_the_clients_and_reuse_is_not_sent() -> None:
    client = OptimizationHints(reuse_snapshots=False, lazy_loading=False, parallel_execution=False)
    fields = policy_fields(client, None, OptimizationHints(parallel_execution=True))
    assert fields == {"optimizationHints": {"lazyLoading": False, "parallelExecution": True}}
    assert policy_fields(OptimizationHints(), None, None) == {}


def test_mappings_with_camel_or_snake_keys_are_accepted() -> None:
    fields = policy_fields(OptimizationHints(), {"cacheSize": 0, "ttl": 5}, {"incremental_snapshots": False})
    assert fields == {"cacheConfig": {"cacheSize": 0, "ttl": 5}, "optimizationHints": {"incrementalSnapshots": False}}
    assert reuse_of(OptimizationHints(), {"reuseSnapshots": False}) is False
    assert reuse_of(OptimizationHints(reuse_snapshots=False), {"lazyLoading": True}) is False
