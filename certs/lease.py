"""Leader election with a coordination.k8s.io/v1 Lease, the way client-go does it.

One replica holds the Lease and renews it well inside its duration; the others see a
fresh renewTime and stay followers. A holder that stops renewing loses the Lease once
`leaseDurationSeconds` pass. Every write carries the resourceVersion it read, so two
candidates cannot both win.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

from certs.issue import utcnow
from common.kube import ApiError, request

_MICRO: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


class LeaderLease:
    def __init__(
        self,
        api: Any,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: dt.timedelta = dt.timedelta(seconds=15),
        clock: Callable[[], dt.datetime] = utcnow,
        labels: dict[str, str] | None = None,
        owner_references: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.api = api
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.clock = clock
        self.labels = labels or {}
        self.owner_references = owner_references
        self.held = False

    def acquire_or_renew(self) -> bool:
        """Try once to hold the Lease; True when this identity holds it now."""
        now = self.clock()
        try:
            lease = request(self.api, "GET", self.path)
        except ApiError as exc:
            if not exc.not_found:
                raise
            self.held = self._create(now)
            return self.held
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder and holder != self.identity and not _expired(spec, now):
            self.held = False
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder != self.identity:
            transitions += 1
            spec["acquireTime"] = now.strftime(_MICRO)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=int(self.duration.total_seconds()),
            renewTime=now.strftime(_MICRO),
            leaseTransitions=transitions,
        )
        lease["spec"] = spec
        try:
            request(self.api, "PUT", self.path, body=lease)
        except ApiError as exc:
            if exc.conflict:
                self.held = False
                return False
            raise
        self.held = True
        return True

    def release(self) -> None:
        """Give the Lease up so another replica takes over at once (best effort)."""
        if not self.held:
            return
        self.held = False
        try:
            lease = request(self.api, "GET", self.path)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec["holderIdentity"] = None
            spec["leaseDurationSeconds"] = 1
            lease["spec"] = spec
            request(self.api, "PUT", self.path, body=lease)
        except ApiError:
            pass

    def _create(self, now: dt.datetime) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "ownerReferences": self.owner_references() if self.owner_references else [],
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration.total_seconds()),
                "acquireTime": now.strftime(_MICRO),
                "renewTime": now.strftime(_MICRO),
                "leaseTransitions": 0,
            },
        }
        try:
            request(self.api, "POST", self.collection, body=body)
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        return True


def _expired(spec: dict[str, Any], now: dt.datetime) -> bool:
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    try:
        seconds = int(spec.get("leaseDurationSeconds") or 0)
        when = dt.datetime.strptime(str(renewed), _MICRO).replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        return True
    return now >= when + dt.timedelta(seconds=seconds)
