"""job-sidecar-never-completes: a Job (or CronJob) whose pod runs a long-running helper
as a plain container.

Looks at: `containers` of Job and CronJob pod templates (and of Pods a Job controls).
Reports a container that is a long-running helper (a log shipper, proxy, telemetry
agent, or a Remora capability operator: see lint.recognize) beside at least one other
container. Allowed: the same helper in `initContainers` with `restartPolicy: Always`.
"""

from __future__ import annotations

from lint import recognize
from lint.model import Finding, Inventory, Severity
from lint.rules.rule import Rule

ID = "job-sidecar-never-completes"


def check(inventory: Inventory) -> list[Finding]:
    findings = []
    for workload in inventory.workloads:
        if not workload.job_like:
            continue
        for container, role in recognize.sidecars(workload):
            if container.role != "app":
                continue  # a native sidecar is stopped when the main containers finish
            findings.append(
                Finding(
                    rule=ID,
                    severity=Severity.ERROR,
                    objects=(workload.ref,),
                    message=f"{workload.ref}: container {container.name!r} ({role}) runs as a plain "
                    "container, so the Job's pod never completes",
                    why=(
                        "A Job is complete when all of its pod's containers have exited. A "
                        f"{role} serves until it is stopped, so after the work is done the pod keeps "
                        "running: the Job never reports Complete, a CronJob's next run may be skipped "
                        "(concurrencyPolicy) and the pod holds its resources forever."
                    ),
                    fix=(
                        f"Move {container.name!r} from containers to initContainers and set "
                        "restartPolicy: Always on it (a native sidecar, Kubernetes 1.29+): the kubelet "
                        "starts it before the work and stops it once the work has exited."
                    ),
                    details={"container": container.name, "helper_role": role},
                )
            )
    return findings


RULE = Rule(ID, "A Job runs a long-running helper as a plain container", Severity.ERROR, check)
