"""Run the containers of a pod, as the API server returned it, as local processes.

This is the part of a kubelet the demo needs for the agent pod: it reads the pod spec
after admission (so the injected capability sidecars are there), materialises the
volumes the containers mount (downward API, Secrets, ConfigMaps, projected service
account tokens, emptyDirs) into a directory per pod, resolves each container's env
(values with $(VAR) references, downward-API fields, Secret and ConfigMap keys), and
starts native sidecars first, then the main containers.

What a container runtime would do and a local process cannot: there is no filesystem
namespace, so paths under a volume's mountPath in the command, args and env are
rewritten to the volume's local directory; there is no in-cluster network, so the
containers get a kubeconfig (the pod's service account token from the TokenRequest API,
bound to the pod, exactly what the kubelet would mount) in $KUBECONFIG. Only Remora's
own image can run here: its `remora` command is this installation's.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.kube import ApiError, request
from remora.demo.errors import DemoError

Obj = dict[str, Any]
POD_IP = "127.0.0.1"
TOKEN_SECONDS = 3600
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


@dataclass
class ContainerRun:
    """One container as a local process: what to run and with what environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    sidecar: bool
    mounts: dict[str, Path] = field(default_factory=dict)


def go_quote(value: str) -> str:
    """Quote like Go's strconv.Quote, the format of the kubelet's downward-API files."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(char)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not char.isprintable() and code < 0x10000:
            out.append(f"\\u{code:04x}")
        elif not char.isprintable():
            out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def map_file(values: Mapping[str, str]) -> str:
    """A labels or annotations file: one key="quoted value" line per key, sorted by key."""
    return "".join(f"{key}={go_quote(values[key])}\n" for key in sorted(values))


def field_value(pod: Obj, path: str) -> str:
    """A downward-API fieldRef, for an env var (single values) or a file (also whole maps)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        return map_file(meta.get(path.split(".")[1]) or {})
    match = _FIELD_KEY.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise DemoError(f"downward-API field {path!r} is not supported by the demo's kubelet")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: defined names are replaced, $$ is a literal $, others stay."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(sub, text)


def rewrite_paths(text: str, mounts: Mapping[str, Path]) -> str:
    """Point a path under a mountPath (alone or after `--flag=`) at the volume's local directory."""
    prefix, sep, value = text.partition("=")
    if sep and prefix.startswith("-"):
        return f"{prefix}={rewrite_paths(value, mounts)}"
    for mount_path in sorted(mounts, key=len, reverse=True):
        if text == mount_path or text.startswith(mount_path.rstrip("/") + "/"):
            return str(mounts[mount_path]) + text[len(mount_path.rstrip("/")) :]
    return text


class PodRunner:
    """Prepares one pod's containers: volumes on disk, kubeconfig, env and argv per container."""

    def __init__(
        self,
        api: Any,
        pod: Obj,
        *,
        pod_dir: Path,
        server: str,
        ca_pem: bytes,
        resolve_command: Callable[[str, list[str]], list[str]],
        base_env: Mapping[str, str],
    ) -> None:
        self.api = api
        self.pod = pod
        self.namespace = str(pod["metadata"]["namespace"])
        self.name = str(pod["metadata"]["name"])
        self.pod_dir = pod_dir
        self.server = server
        self.ca_pem = ca_pem
        self.resolve_command = resolve_command
        self.base_env = dict(base_env)
        self._token: str | None = None

    def prepare(self) -> list[ContainerRun]:
        """Everything the containers need, in the order a kubelet starts them."""
        spec = self.pod["spec"]
        volumes = {v["name"]: self._materialise(v) for v in spec.get("volumes") or []}
        kubeconfig = self._write_kubeconfig()
        runs = []
        for container in spec.get("initContainers") or []:
            if container.get("restartPolicy") != "Always":
                raise DemoError(
                    f"init container {container['name']} runs to completion; the demo runs only "
                    "native sidecars and main containers"
                )
            runs.append(self._container(container, volumes, kubeconfig, sidecar=True))
        runs += [self._container(c, volumes, kubeconfig, sidecar=False) for c in spec.get("containers") or []]
        return runs

    # ------------------------------------------------------------------ containers

    def _container(
        self, container: Obj, volumes: Mapping[str, Path], kubeconfig: Path, *, sidecar: bool
    ) -> ContainerRun:
        name = str(container["name"])
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in volumes:
                raise DemoError(f"container {name} mounts unknown volume {mount['name']!r}")
            local = volumes[mount["name"]] / mount.get("subPath", "")
            mounts[str(mount["mountPath"])] = local
        env = self._env(container)
        command = [expand(part, env) for part in container.get("command") or []]
        args = [expand(part, env) for part in container.get("args") or []]
        if not command:
            raise DemoError(f"container {name} has no command; the demo cannot know the image's entrypoint")
        argv = self.resolve_command(name, [rewrite_paths(part, mounts) for part in command + args])
        full_env = {
            **self.base_env,
            "HOSTNAME": self.name,
            "KUBECONFIG": str(kubeconfig),
            **{key: rewrite_paths(value, mounts) for key, value in env.items()},
        }
        return ContainerRun(name, argv, full_env, sidecar, mounts)

    def _env(self, container: Obj) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "secretRef" in source:
                data = self._secret_data(source["secretRef"])
            elif "configMapRef" in source:
                data = self._configmap_data(source["configMapRef"])
            else:
                raise DemoError(f"container {container['name']}: unsupported envFrom source {sorted(source)}")
            env.update({prefix + key: value.decode(errors="replace") for key, value in data.items()})
        for var in container.get("env") or []:
            value_from = var.get("valueFrom")
            if value_from is None:
                env[var["name"]] = expand(str(var.get("value", "")), env)
            elif "fieldRef" in value_from:
                env[var["name"]] = field_value(self.pod, value_from["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in value_from:
                env[var["name"]] = self._key(
                    self._secret_data(value_from["secretKeyRef"]), value_from["secretKeyRef"]
                )
            elif "configMapKeyRef" in value_from:
                ref = value_from["configMapKeyRef"]
                env[var["name"]] = self._key(self._configmap_data(ref), ref)
            else:
                raise DemoError(
                    f"container {container['name']}: env {var['name']} uses {sorted(value_from)}, "
                    "which the demo's kubelet does not resolve"
                )
        return env

    @staticmethod
    def _key(data: Mapping[str, bytes], ref: Obj) -> str:
        if ref["key"] not in data:
            if ref.get("optional"):
                return ""
            raise DemoError(f"{ref.get('name')} has no key {ref['key']!r}")
        return data[ref["key"]].decode(errors="replace")

    # ------------------------------------------------------------------ volumes

    def _materialise(self, volume: Obj) -> Path:
        """Write one volume's files under the pod's directory, as the kubelet would mount them."""
        target = self.pod_dir / "volumes" / volume["name"]
        target.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return target
        if "downwardAPI" in volume:
            self._write_items(target, self._downward_files(volume["downwardAPI"].get("items") or []))
        elif "secret" in volume:
            source = volume["secret"]
            data = self._secret_data({"name": source["secretName"], "optional": source.get("optional")})
            self._write_items(target, _select(data, source.get("items")))
        elif "configMap" in volume:
            data = self._configmap_data(volume["configMap"])
            self._write_items(target, _select(data, volume["configMap"].get("items")))
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                self._write_items(target, self._projected(source))
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise DemoError(
                f"volume {volume['name']} ({', '.join(kinds)}) is not supported by the demo's kubelet"
            )
        return target

    def _projected(self, source: Obj) -> dict[str, bytes]:
        if "serviceAccountToken" in source:
            return {source["serviceAccountToken"]["path"]: self.token().encode()}
        if "downwardAPI" in source:
            return self._downward_files(source["downwardAPI"].get("items") or [])
        if "secret" in source:
            return _select(self._secret_data(source["secret"]), source["secret"].get("items"))
        if "configMap" in source:
            return _select(self._configmap_data(source["configMap"]), source["configMap"].get("items"))
        raise DemoError(f"projected volume source {sorted(source)} is not supported by the demo's kubelet")

    def _downward_files(self, items: list[Obj]) -> dict[str, bytes]:
        files = {}
        for item in items:
            if "fieldRef" not in item:
                raise DemoError(f"downward-API file {item.get('path')}: only fieldRef items are supported")
            files[item["path"]] = field_value(self.pod, item["fieldRef"]["fieldPath"]).encode()
        return files

    @staticmethod
    def _write_items(target: Path, files: Mapping[str, bytes]) -> None:
        root = target.resolve()
        for rel, content in files.items():
            path = (target / rel).resolve()
            if root not in path.parents:
                raise DemoError(f"volume file path {rel!r} leaves its volume")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(0o600)

    def _secret_data(self, ref: Obj) -> dict[str, bytes]:
        obj = self._get(f"/api/v1/namespaces/{self.namespace}/secrets/{ref['name']}", ref)
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    def _configmap_data(self, ref: Obj) -> dict[str, bytes]:
        name = ref["name"]
        try:
            obj = self._get(f"/api/v1/namespaces/{self.namespace}/configmaps/{name}", ref)
        except DemoError:
            # kube-root-ca.crt is published by a controller the local control plane does not
            # run; its content is the cluster's CA, which is what the kubelet would mount.
            if name != "kube-root-ca.crt":
                raise
            return {"ca.crt": self.ca_pem}
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    def _get(self, path: str, ref: Obj) -> Obj:
        try:
            return dict(request(self.api, "GET", path))
        except ApiError as exc:
            if exc.not_found and ref.get("optional"):
                return {}
            raise DemoError(
                f"cannot read {path.split('/')[-2][:-1]} {self.namespace}/{ref['name']}: {exc}"
            ) from None

    # ------------------------------------------------------------------ credentials

    def token(self) -> str:
        """A service account token bound to this pod (TokenRequest), as the kubelet mounts it."""
        if self._token is None:
            account = self.pod["spec"].get("serviceAccountName") or "default"
            body = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": TOKEN_SECONDS,
                    "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name,
                                       "uid": self.pod["metadata"]["uid"]},
                },
            }  # fmt: skip
            path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
            try:
                self._token = str(request(self.api, "POST", path, body=body)["status"]["token"])
            except ApiError as exc:
                raise DemoError(f"cannot get a token for service account {account}: {exc}") from None
        return self._token

    def _write_kubeconfig(self) -> Path:
        account = self.pod["spec"].get("serviceAccountName") or "default"
        user = f"system:serviceaccount:{self.namespace}:{account}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "remora-demo",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": self.token()}}],
            "contexts": [{"name": "pod", "context": {"cluster": "remora-demo", "user": user,
                                                      "namespace": self.namespace}}],
            "current-context": "pod",
        }  # fmt: skip
        path = self.pod_dir / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path


def _select(data: Mapping[str, bytes], items: list[Obj] | None) -> dict[str, bytes]:
    """A Secret's or ConfigMap's keys as files: all of them, or only the listed items."""
    if not items:
        return dict(data)
    out = {}
    for item in items:
        if item["key"] not in data:
            raise DemoError(f"volume item {item['key']!r} is missing from its source")
        out[item["path"]] = data[item["key"]]
    return out
