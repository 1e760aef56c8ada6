"""sidecar-without-resources: a sidecar that does not declare CPU and memory requests
and a memory limit.

Looks at: `resources.requests` (cpu, memory) and `resources.limits.memory` of every sidecar:
native sidecars (init containers with restartPolicy Always), injected Remora operators,
and plain containers recognised as helpers. One finding per workload, with what the
sidecars cost as declared, per pod and per 1,000 pods, because sidecars multiply with
replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from common import names, quantity
from lint import recognize
from lint.model import Container, Finding, Inventory, Severity, Workload, as_dict
from lint.rules.rule import Rule

ID = "sidecar-without-resources"
FIELDS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
# A CPU limit is not required: CPU is compressible (an overrun is throttled, not killed),
# and many teams leave it out on purpose, as Remora's own catalog does.
REQUIRED = ("requests.cpu", "requests.memory", "limits.memory")


@dataclass
class Total:
    """A sum over sidecars that knows how many declared nothing (then the sum is only a floor)."""

    amount: Decimal = Decimal(0)
    missing: int = 0

    def render(self, field: str, scale: int) -> str:
        show = quantity.format_cpu if field.endswith("cpu") else quantity.format_memory
        if self.missing and not self.amount:
            return "?"
        text = show(self.amount * scale)
        return f"{text} + ?" if self.missing else text


def check(inventory: Inventory) -> list[Finding]:
    findings = []
    for workload in inventory.workloads:
        sidecars = recognize.sidecars(workload)
        lacking = {c.name: fields for c, _ in sidecars if (fields := _missing(c))}
        if lacking:
            findings.append(_finding(workload, sidecars, lacking))
    return findings


def _declared(container: Container, field: str) -> Decimal | None:
    """The quantity at `field` ('limits.memory') of the container's resources, None if absent or invalid."""
    kind, name = field.split(".")
    value = quantity.parse(as_dict(as_dict(container.body.get("resources")).get(kind)).get(name))
    return value if value is not None and value >= 0 else None  # the API refuses negative resources


def _missing(container: Container) -> list[str]:
    return [field for field in REQUIRED if _declared(container, field) is None]


def _phrase(missing: list[str]) -> str:
    """['requests.cpu', 'requests.memory'] -> 'no requests'; all -> 'no requests or memory limit'."""
    parts = []
    requests = [m.split(".")[1] for m in missing if m.startswith("requests.")]
    if len(requests) == 2:
        parts.append("requests")
    elif requests:
        parts.append(f"{requests[0]} request")
    if "limits.memory" in missing:
        parts.append("memory limit")
    return "no " + " or ".join(parts)


def _totals(sidecars: list[tuple[Container, str]]) -> dict[str, Total]:
    totals = {field: Total() for field in FIELDS}
    for container, _ in sidecars:
        for field in FIELDS:
            value = _declared(container, field)
            total = totals[field]
            if value is None:
                total.missing += 1
            else:
                total.amount += value
    return totals


def cost_table(totals: dict[str, Total], replicas: int | None) -> tuple[str, ...]:
    """What the sidecars cost as declared: per pod, per 1,000 pods, and at the workload's replicas."""
    rows = [("per pod", 1), ("per 1,000 pods", 1000)]
    if replicas is not None and replicas > 1:
        rows.append((f"at {replicas} replicas", replicas))
    header = ("sidecar cost as declared", "CPU request", "CPU limit", "memory request", "memory limit")
    order = ("requests.cpu", "limits.cpu", "requests.memory", "limits.memory")
    table = [header, *((label, *(totals[f].render(f, scale) for f in order)) for label, scale in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    return (*lines, "(? = not declared: unbounded, not counted by the scheduler)")


def _finding(
    workload: Workload, sidecars: list[tuple[Container, str]], lacking: dict[str, list[str]]
) -> Finding:
    totals = _totals(sidecars)
    which = "; ".join(f"{name!r} has {_phrase(fields)}" for name, fields in sorted(lacking.items()))
    details = {
        "sidecars": sorted(c.name for c, _ in sidecars),
        "lacking": lacking,
        "per_pod": {key: _plain(total) for key, total in totals.items()},
        "per_1000_pods": {key: _plain(total, 1000) for key, total in totals.items()},
        "replicas": workload.replicas,
    }
    return Finding(
        rule=ID,
        severity=Severity.WARNING,
        objects=(workload.ref,),
        message=f"{workload.ref}: {len(sidecars)} sidecar(s) per pod, not all sized: {which}",
        why=(
            "Every replica carries its own copy of every sidecar, so a sidecar's cost is multiplied by "
            "the pod count. Without requests the scheduler does not count it, and nodes are overcommitted "
            "(evictions, noisy neighbours); without a memory limit one leaking sidecar can starve the "
            "application it serves or the node. The pod's QoS class also drops below Guaranteed."
        ),
        fix=(
            "Set resources.requests (cpu and memory) and resources.limits.memory on each sidecar, sized from "
            "its observed usage; for injected Remora operators set them in the capability catalog "
            f"(ConfigMap {names.CATALOG_CONFIGMAP}) so every injected pod gets them."
        ),
        details=details,
        notes=cost_table(totals, workload.replicas),
    )


def _plain(total: Total, scale: int = 1) -> dict[str, object]:
    return {"declared": str(total.amount * scale), "undeclared_sidecars": total.missing}


RULE = Rule(ID, "A sidecar without CPU and memory requests and a memory limit", Severity.WARNING, check)
