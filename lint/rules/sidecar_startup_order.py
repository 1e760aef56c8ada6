"""sidecar-startup-order: an app container that needs a sidecar from its first moment,
while the sidecar is a plain container that may start after it (and stop before it).

Looks at: the `command`, `args` and `env` values of app containers in pods that run a
helper as a plain container. Reports an app container that
- names `localhost:PORT` (or 127.0.0.1, [::1]) where PORT is a port the sidecar declares,
- routes through a proxy sidecar with HTTP_PROXY / HTTPS_PROXY / ALL_PROXY on localhost,
- or is a Remora agent (remora.dev/capabilities) whose capability operators are plain
  containers: the agent creates resources that nothing reconciles until they start.
Jobs are left to job-sidecar-never-completes, whose fix (a native sidecar) is the same.
"""

from __future__ import annotations

import re

from lint import recognize
from lint.model import Container, Finding, Inventory, Severity, Workload, as_dict, as_list, as_str
from lint.rules.rule import Rule

ID = "sidecar-startup-order"
_LOCAL = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\]):([0-9]{1,5})\b")
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_PROXY_ENV_WHERE = {f"ENV {name}" for name in PROXY_ENV}


def check(inventory: Inventory) -> list[Finding]:
    findings = []
    for workload in inventory.workloads:
        if workload.job_like:
            continue
        plain = [(c, role) for c, role in recognize.sidecars(workload) if c.role == "app"]
        if not plain:
            continue
        helper_names = {c.name for c, _ in plain}
        for app in workload.containers():
            if app.role != "app" or app.name in helper_names:
                continue
            for sidecar, role, reason in _needs(app, plain, workload):
                findings.append(_finding(workload, app, sidecar, role, reason))
    return findings


def _strings(container: Container) -> list[tuple[str, str]]:
    """(where, text) for the command, args and literal env values of a container."""
    found = [("command", as_str(part)) for part in as_list(container.body.get("command"))]
    found += [("args", as_str(part)) for part in as_list(container.body.get("args"))]
    for env in map(as_dict, as_list(container.body.get("env"))):
        found.append((f"env {as_str(env.get('name'))}", as_str(env.get("value"))))
    return [(where, text) for where, text in found if text]


def _needs(
    app: Container, plain: list[tuple[Container, str]], workload: Workload
) -> list[tuple[Container, str, str]]:
    """(sidecar, role, reason) for each plain sidecar this app container needs at start."""
    needs = []
    for sidecar, role in plain:
        reason = _why_needed(app, sidecar, role, workload)
        if reason:
            needs.append((sidecar, role, reason))
    return needs


def _why_needed(app: Container, sidecar: Container, role: str, workload: Workload) -> str:
    for where, text in _strings(app):
        for match in _LOCAL.finditer(text):
            if int(match.group(1)) in sidecar.ports:
                return f"its {where} names {match.group(0)}, which {sidecar.name!r} serves"
            # A proxy that declares no ports is still the one a localhost proxy setting means.
            if role == "proxy" and not sidecar.ports and where.upper() in _PROXY_ENV_WHERE:
                return f"its {where} sends traffic through a local proxy at {match.group(0)}"
    if role == recognize.REMORA_SIDECAR and workload.capabilities:
        return (
            f"it asks for capabilities ({', '.join(workload.capabilities)}) that {sidecar.name!r} "
            "serves: resources it creates wait for an operator that may not be running yet"
        )
    return ""


def _finding(workload: Workload, app: Container, sidecar: Container, role: str, reason: str) -> Finding:
    return Finding(
        rule=ID,
        severity=Severity.WARNING,
        objects=(workload.ref,),
        message=f"{workload.ref}: container {app.name!r} needs sidecar {sidecar.name!r} ({role}) at start "
        f"({reason}), but the sidecar is a plain container",
        why=(
            "Plain containers start in parallel with no ordering guarantee, and stop in parallel: the "
            "app can start before its sidecar listens (failed first requests, crash loops on connection "
            "refused) and lose it while still shutting down. Workarounds such as sleep loops or "
            "postStart hooks only narrow the window."
        ),
        fix=(
            f"Make {sidecar.name!r} a native sidecar: move it to initContainers with restartPolicy: "
            "Always and give it a startupProbe (or readinessProbe) on the port it serves; the kubelet "
            "then starts the app only once the sidecar is started, and stops the sidecar after the app. "
            "Remora's injector adds its operators that way wherever the cluster supports native sidecars."
        ),
        details={"container": app.name, "sidecar": sidecar.name, "helper_role": role, "reason": reason},
    )


RULE = Rule(
    ID,
    "An app container needs a sidecar at start, but the sidecar has no start order",
    Severity.WARNING,
    check,
)
