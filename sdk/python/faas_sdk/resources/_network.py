"""The network fields shared by instance start, branch, set_network and snapshot create.

``network_config`` takes a :class:`~faas_sdk.types.NetworkConfig` or the same as a dict
(``{"egress": {"mode": "deny-all", "allow": ["10.0.0.0/8", "pypi.org"]}}``); None = inherit.
``network_bandwidth`` takes Mbit/s, ``"unlimited"`` to remove an inherited limit, or None = inherit.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Union

from .._base_client import APIRequest
from .._ids import IdRef, id_of
from ..types import NetworkConfig

NetworkConfigParam = Union[NetworkConfig, Mapping[str, Any]]
Bandwidth = Union[int, Literal["unlimited"]]


def network_config_json(config: NetworkConfigParam | None) -> dict[str, Any] | None:
    if config is None:
        return None
    if isinstance(config, NetworkConfig):
        return config.to_api()
    return dict(config)


def bandwidth_json(bandwidth: Bandwidth | None) -> dict[str, Any]:
    """{"networkBandwidth": n|null} when given, {} to inherit."""
    if bandwidth is None:
        return {}
    return {"networkBandwidth": None if bandwidth == "unlimited" else bandwidth}


def network_fields(config: NetworkConfigParam | None, bandwidth: Bandwidth | None) -> dict[str, Any]:
    fields = bandwidth_json(bandwidth)
    body = network_config_json(config)
    if body is not None:
        fields["networkConfig"] = body
    return fields


def set_network_request(instance: IdRef, config: NetworkConfigParam | None, bandwidth: Bandwidth | None) -> APIRequest:
    return APIRequest("PUT", f"/v1/instances/{id_of(instance)}/network", json=network_fields(config, bandwidth))
