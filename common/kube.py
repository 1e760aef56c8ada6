"""Kubernetes API access with plain dicts.

The official client handles configuration, TLS and authentication; requests and
responses stay plain JSON so that no field is lost to a generated model and hot
paths skip model construction.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from kubernetes import client, config
from urllib3 import Timeout


class ApiError(Exception):
    """A non-2xx answer from the apiserver, with its status code and Status reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.status == 410


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from an explicit kubeconfig, $KUBECONFIG, in-cluster config or ~/.kube/config."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        cfg = client.Configuration()
        config.load_kube_config(config_file=path, client_configuration=cfg)
        return client.ApiClient(cfg)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    cfg = client.Configuration()
    config.load_kube_config(client_configuration=cfg)
    return client.ApiClient(cfg)


def _auth_headers(api: client.ApiClient, path: str, method: str) -> dict[str, str]:
    # Goes through the client so that a refreshed (projected, rotating) token is picked up.
    headers: dict[str, str] = {}
    api.update_params_for_auth(headers, [], ["BearerToken"], path, method, None)
    return headers


def request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, str | int | bool] | None = None,
    content_type: str = "application/json",
    timeout: float = 30.0,
) -> Any:
    """One API call with a plain JSON body; returns the decoded JSON answer or raises ApiError."""
    url = api.configuration.host + path
    if query:
        url += "?" + _encode_query(query)
    headers = {"Accept": "application/json", "Content-Type": content_type, **_auth_headers(api, path, method)}
    payload = orjson.dumps(body) if body is not None else None
    resp = api.rest_client.pool_manager.request(
        method, url, body=payload, headers=headers, preload_content=True, timeout=timeout
    )
    data = resp.data
    if resp.status >= 300:
        raise _api_error(resp.status, data)
    return orjson.loads(data) if data else None


def stream(
    api: client.ApiClient,
    path: str,
    query: Mapping[str, str | int | bool],
    *,
    read_timeout: float,
) -> Iterator[dict[str, Any]]:
    """Yield decoded watch events from a watch request; raises ApiError on an error status."""
    url = api.configuration.host + path + "?" + _encode_query(query)
    headers = {"Accept": "application/json", **_auth_headers(api, path, "GET")}
    resp = api.rest_client.pool_manager.request(
        "GET", url, headers=headers, preload_content=False, timeout=Timeout(connect=10.0, read=read_timeout)
    )
    try:
        if resp.status >= 300:
            raise _api_error(resp.status, resp.read())
        buffer = b""
        for chunk in resp.stream(64 * 1024, decode_content=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield orjson.loads(line)
    finally:
        resp.release_conn()


def _encode_query(query: Mapping[str, str | int | bool]) -> str:
    return urlencode({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.items()})


def _api_error(status: int, data: bytes) -> ApiError:
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        return ApiError(status, str(decoded.get("reason", "")), str(decoded.get("message", "")))
    return ApiError(status, "", data[:200].decode("utf-8", "replace"))
