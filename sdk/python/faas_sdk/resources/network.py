"""HTTP services of instances, served by the engine's host-based proxy at
``http://<name>-<instance id with _ as ->.<service host>:<port>/`` (docs/services.md)."""

from __future__ import annotations

from typing import Any, Literal

from .._base_client import APIRequest
from .._ids import IdRef, id_of
from ..types import ServiceEndpoint
from .port_forwards import AsyncPortForwards, PortForwards

ServiceAuth = Literal["api-key", "token", "none"]


def _expose_request(instance: IdRef, name: str, port: int, auth: ServiceAuth | None) -> APIRequest:
    body: dict[str, Any] = {"port": port}
    if auth is not None:
        body["auth"] = auth
    return APIRequest("PUT", f"/v1/instances/{id_of(instance)}/services/{name}", json=body)


def _hide_request(instance: IdRef, name: str) -> APIRequest:
    return APIRequest("DELETE", f"/v1/instances/{id_of(instance)}/services/{name}")


def _list_request(instance: IdRef) -> APIRequest:
    return APIRequest("GET", f"/v1/instances/{id_of(instance)}/services")


def _parse_list(raw: Any) -> list[ServiceEndpoint]:
    return [ServiceEndpoint.model_validate(item) for item in raw["data"]]


class Network(PortForwards):
    """The seed's NetworkOperations: HTTP services here, port_forward and create_tunnel from PortForwards."""

    def expose_http(self, instance: IdRef, name: str, port: int, *, auth: ServiceAuth | None = None) -> ServiceEndpoint:
        """Serves ``port`` of the instance under a URL named ``name`` (exposing a name again replaces it).

        ``auth``: ``"api-key"`` (default) — a bearer key or token of a key that owns the instance;
        ``"token"`` — that, or the signed link ``token_url`` (for browsers); ``"none"`` — public."""
        return ServiceEndpoint.model_validate(self._client._call(_expose_request(instance, name, port, auth)))

    def hide_http(self, instance: IdRef, name: str) -> None:
        """Stops serving it; connections open through it are closed."""
        self._client._call(_hide_request(instance, name))

    def list_services(self, instance: IdRef) -> list[ServiceEndpoint]:
        """The instance's exposed services (for ``auth="token"`` each with a fresh ``token_url``)."""
        return _parse_list(self._client._call(_list_request(instance)))


class AsyncNetwork(AsyncPortForwards):
    """See :class:`Network`."""

    async def expose_http(self, instance: IdRef, name: str, port: int, *, auth: ServiceAuth | None = None) -> ServiceEndpoint:
        return ServiceEndpoint.model_validate(await self._client._call(_expose_request(instance, name, port, auth)))

    async def hide_http(self, instance: IdRef, name: str) -> None:
        await self._client._call(_hide_request(instance, name))

    async def list_services(self, instance: IdRef) -> list[ServiceEndpoint]:
        return _parse_list(await self._client._call(_list_request(instance)))
