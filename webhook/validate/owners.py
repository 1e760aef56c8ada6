"""OwnerReference rules: everything the capability operators create can be garbage collected.

For an object labelled app.kubernetes.io/managed-by=remora (other than a capability resource):

1. It has exactly one ownerReference, and that reference is the controller (controller: true).
   Garbage collection deletes a dependent only when *all* its owners are gone, so a second owner
   would keep it alive after the capability resource that caused it was deleted.
2. The reference points to a remora.dev capability kind (BuildRequest, TestRun, DatabaseMigration).
3. On CREATE, that owner exists in the object's namespace with the referenced UID, at an
   apiVersion the API serves (a stale UID or an unserved version leaves a dangling reference).
4. blockOwnerDeletion is not true: operators do not get to hold up their owner's deletion.
   Pods the Job controller creates for those Jobs are exempt from rules 2 and 4: their controller
   is the Job (which must exist with that UID), and the Job controller sets blockOwnerDeletion itself.
5. On UPDATE the controller reference may not be removed or pointed elsewhere; the garbage
   collector is exempt, since orphaning deletion is how it removes references.

Capability resources themselves must carry the remora.dev/agent label naming the agent pod.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import urllib3

from common import kube
from common.names import AGENT_LABEL, GROUP, KIND_BY_NAME, MANAGED_BY_LABEL, MANAGED_BY_VALUE

CAPABILITY_KINDS: Final = ", ".join(KIND_BY_NAME)
# Names go into an API path: only DNS-1123 subdomains (object names) and labels (namespaces, versions).
_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class OwnerConfig:
    job_controller_usernames: frozenset[str] = frozenset(
        {"system:serviceaccount:kube-system:job-controller", "system:kube-controller-manager"}
    )
    garbage_collector_usernames: frozenset[str] = frozenset(
        {"system:serviceaccount:kube-system:generic-garbage-collector", "system:kube-controller-manager"}
    )


class LookupUnavailable(Exception):
    """The API could not say whether the owner exists; the message says why."""


class OwnerLookup(Protocol):
    def served_versions(self, group: str) -> frozenset[str]:
        """The versions of `group` the API serves (empty when the group is not served)."""

    def uid(self, group: str, version: str, plural: str, namespace: str, name: str) -> str | None:
        """The UID of the named object, None when it does not exist."""


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Target:
    """What owner rules need to know about one admission request."""

    operation: str
    group: str
    kind: str
    namespace: str
    username: str
    obj: Mapping[str, Any]
    old: Mapping[str, Any] | None = None


def applies(group: str, kind: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether any owner rule applies; asked before a Target is built (most requests are plain pods)."""
    return is_capability_resource(group, kind) or _managed(obj) or (old is not None and _managed(old))


def _managed_now_or_before(target: Target) -> bool:
    # Dropping the label in the same update must not be a way out of the rules.
    return _managed(target.obj) or (target.old is not None and _managed(target.old))


def is_capability_resource(group: str, kind: str) -> bool:
    return group == GROUP and kind in KIND_BY_NAME


def check(target: Target, lookup: OwnerLookup, config: OwnerConfig) -> list[Problem]:
    """Every owner rule `target` breaks (empty: allowed). Raises LookupUnavailable."""
    if target.operation not in ("CREATE", "UPDATE") or _being_deleted(target.obj):
        # Never stand in the way of finalizers being removed from an object on its way out.
        return []
    if is_capability_resource(target.group, target.kind):
        problems = _agent_label(target.obj)
        if problems and target.old is not None and _agent_label(target.old):
            return []  # it never had the label (created before this rule): do not block its updates
        return problems
    if not _managed_now_or_before(target):
        return []
    if target.operation == "UPDATE" and target.username in config.garbage_collector_usernames:
        return []
    refs, problems = _references(target.obj)
    if problems:
        return problems
    if len(refs) != 1 or refs[0].get("controller") is not True:
        controllers = sum(1 for ref in refs if ref.get("controller") is True)
        return [
            Problem(
                "metadata.ownerReferences",
                f"must hold exactly one reference, the controller reference to the {GROUP} "
                f"capability resource that caused this object (found {len(refs)} "
                f"{'reference' if len(refs) == 1 else 'references'}, {controllers} with controller=true)",
            )
        ]
    ref = refs[0]
    job_pod = (
        target.group == ""
        and target.kind == "Pod"
        and _group(ref["apiVersion"]) == "batch"
        and ref["kind"] == "Job"
        and target.username in config.job_controller_usernames
    )
    problems = _reference_rules(ref, job_pod)
    if problems:
        return problems
    old_ref = _old_controller(target)
    if old_ref is not None:
        return _unchanged(old_ref, ref)
    return _owner_exists(ref, target.namespace, lookup, job_pod)


def _managed(obj: Mapping[str, Any]) -> bool:
    labels = _labels(obj)
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def _being_deleted(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, dict) and meta.get("deletionTimestamp") is not None


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _agent_label(obj: Mapping[str, Any]) -> list[Problem]:
    value = _labels(obj).get(AGENT_LABEL)
    if isinstance(value, str) and value:
        return []
    return [
        Problem(
            f"metadata.labels[{AGENT_LABEL}]",
            f"capability resources must carry the {AGENT_LABEL} label naming the agent pod",
        )
    ]


def _references(obj: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[Problem]]:
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if refs is None:
        return [], []
    if not isinstance(refs, list):
        return [], [Problem("metadata.ownerReferences", "must be a list")]
    for index, ref in enumerate(refs):
        if not isinstance(ref, dict):
            return [], [Problem(f"metadata.ownerReferences[{index}]", "must be an object")]
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref.get(key), str) or not ref[key]:
                return [], [Problem(f"metadata.ownerReferences[{index}].{key}", "must be a non-empty string")]
        for key in ("controller", "blockOwnerDeletion"):
            if ref.get(key) is not None and not isinstance(ref[key], bool):
                return [], [Problem(f"metadata.ownerReferences[{index}].{key}", "must be a boolean")]
    return refs, []


def _reference_rules(ref: Mapping[str, Any], job_pod: bool) -> list[Problem]:
    problems = []
    if not job_pod and (_group(ref["apiVersion"]) != GROUP or ref["kind"] not in KIND_BY_NAME):
        problems.append(
            Problem(
                "metadata.ownerReferences[0]",
                f"must point to a {GROUP} capability kind ({CAPABILITY_KINDS}), "
                f"not {ref['apiVersion']} {ref['kind']}",
            )
        )
    if not job_pod and ref.get("blockOwnerDeletion") is True:
        problems.append(
            Problem(
                "metadata.ownerReferences[0].blockOwnerDeletion",
                "must not be true: Remora's objects do not hold up their owner's deletion",
            )
        )
    return problems


def _old_controller(target: Target) -> Mapping[str, Any] | None:
    if target.operation != "UPDATE" or not isinstance(target.old, dict):
        return None
    refs, problems = _references(target.old)
    controllers = [ref for ref in refs if ref.get("controller") is True]
    return controllers[0] if controllers and not problems else None


def _unchanged(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Problem]:
    def identity(ref: Mapping[str, Any]) -> tuple[str, str, str, str]:
        return _group(ref["apiVersion"]), ref["kind"], ref["name"], ref["uid"]

    if identity(old) == identity(new):
        return []
    return [
        Problem(
            "metadata.ownerReferences[0]",
            f"the controller reference may not change (was {old['kind']} {old['name']!r} "
            f"uid {old['uid']}, now {new['kind']} {new['name']!r} uid {new['uid']})",
        )
    ]


def _owner_exists(
    ref: Mapping[str, Any], namespace: str, lookup: OwnerLookup, job_pod: bool
) -> list[Problem]:
    field_ = "metadata.ownerReferences[0]"
    if not namespace:
        return [Problem("metadata.namespace", "an object with a namespaced owner must be namespaced")]
    group, _, version = ref["apiVersion"].rpartition("/")
    if not _LABEL.fullmatch(namespace):
        return [Problem("metadata.namespace", f"{namespace!r} is not a valid namespace name")]
    if len(ref["name"]) > 253 or not _SUBDOMAIN.fullmatch(ref["name"]):
        return [Problem(f"{field_}.name", f"{ref['name']!r} is not a valid object name")]
    if not _LABEL.fullmatch(version):
        return [Problem(f"{field_}.apiVersion", f"{ref['apiVersion']!r} is not a valid apiVersion")]
    if job_pod:
        plural = "jobs"
    else:
        served = lookup.served_versions(group)
        if version not in served:
            versions = ", ".join(sorted(served)) or "none"
            return [
                Problem(
                    f"{field_}.apiVersion",
                    f"{ref['apiVersion']} is not served by the API (served versions: {versions})",
                )
            ]
        plural = KIND_BY_NAME[ref["kind"]].plural
    uid = lookup.uid(group, version, plural, namespace, ref["name"])
    if uid is None:
        return [
            Problem(
                f"{field_}.name", f"{ref['kind']} {ref['name']!r} does not exist in namespace {namespace!r}"
            )
        ]
    if uid != ref["uid"]:
        return [
            Problem(
                f"{field_}.uid",
                f"{ref['kind']} {ref['name']!r} has uid {uid}, not {ref['uid']} (a stale reference)",
            )
        ]
    return []


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class MemoryOwnerLookup:
    """An owner lookup over objects held in memory, for tests and offline use."""

    def __init__(self, served: Mapping[str, Iterable[str]] | None = None) -> None:
        self._served = {group: frozenset(versions) for group, versions in (served or {}).items()}
        self._uids: dict[tuple[str, str, str, str], str] = {}

    def add(self, group: str, plural: str, namespace: str, name: str, uid: str) -> None:
        self._uids[(group, plural, namespace, name)] = uid

    def remove(self, group: str, plural: str, namespace: str, name: str) -> None:
        self._uids.pop((group, plural, namespace, name), None)

    def served_versions(self, group: str) -> frozenset[str]:
        return self._served.get(group, frozenset())

    def uid(self, group: str, version: str, plural: str, namespace: str, name: str) -> str | None:
        return self._uids.get((group, plural, namespace, name))


@dataclass
class ApiOwnerLookup:
    """Owners looked up through the Kubernetes API (common.kube.request), bounded in time.

    Served versions come from discovery and are cached briefly; owner reads are never cached,
    since the point is to see the owner as it is now.
    """

    api: Any
    timeout: float = 2.0
    discovery_ttl: float = 30.0
    _discovery: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Its own client without retries: one read is bounded by `timeout`, not by retries x timeout,
        # so an unhealthy API cannot hold an admission past the webhook's own deadline.
        configuration = copy.deepcopy(self.api.configuration)
        configuration.retries = False
        self.api = type(self.api)(configuration)

    def served_versions(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._discovery.get(group)
        if cached and now - cached[0] < self.discovery_ttl:
            return cached[1]
        try:
            answer = kube.request(self.api, "GET", f"/apis/{group}", timeout=self.timeout)
        except kube.ApiError as exc:
            if exc.not_found:
                return frozenset()
            raise LookupUnavailable(f"API discovery of {group} failed: {exc}") from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise LookupUnavailable(f"API discovery of {group} failed: {exc}") from None
        versions = frozenset(
            str(item.get("version"))
            for item in (answer or {}).get("versions") or ()
            if isinstance(item, dict) and item.get("version")
        )
        with self._lock:
            self._discovery[group] = (now, versions)
        return versions

    def uid(self, group: str, version: str, plural: str, namespace: str, name: str) -> str | None:
        path = f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
        try:
            obj = kube.request(self.api, "GET", path, timeout=self.timeout)
        except kube.ApiError as exc:
            if exc.not_found:
                return None
            raise LookupUnavailable(
                f"reading {group}/{version} {plural} {namespace}/{name} failed: {exc}"
            ) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise LookupUnavailable(
                f"reading {group}/{version} {plural} {namespace}/{name} failed: {exc}"
            ) from None
        uid = ((obj or {}).get("metadata") or {}).get("uid")
        return uid if isinstance(uid, str) else None
