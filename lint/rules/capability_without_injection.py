"""capability-without-injection: capabilities asked for where Remora will not inject
them, and injection turned on where nothing asks for it.

Looks at: the `remora.dev/capabilities` annotation of pods and pod templates; the
namespace's `remora.dev/injection` label and `remora.dev/allowed-capabilities`
annotation; the pod's `remora.dev/inject` opt-out label. A namespace is judged only when
it is known: read from the cluster, or its manifest is among the inputs. Reports
- a capability the injector will skip: the namespace lacks injection=enabled, the pod
  opts out, the namespace does not allow the capability, or no such capability exists;
- an injection-enabled namespace whose workloads (as far as the inputs show them) ask
  for no capability at all.
"""

from __future__ import annotations

from common import names
from lint import recognize
from lint.model import Finding, Inventory, ObjectRef, Resource, Severity, Workload
from lint.rules.rule import Rule

ID = "capability-without-injection"
ENABLED = "enabled"

WHY_MISSING = (
    "The agent turns work into capability resources and waits for their status, but with no "
    "operator injected into its pod nothing reconciles them: the work stalls until the broker's "
    "lease expires, then stalls again on the next agent just like this one."
)


def check(inventory: Inventory) -> list[Finding]:
    findings = []
    for workload in inventory.workloads:
        if workload.capabilities:
            findings.extend(_skipped(workload, inventory))
    for namespace in inventory.of_kind("Namespace"):
        finding = _unused(namespace, inventory)
        if finding:
            findings.append(finding)
    return findings


def _skipped(workload: Workload, inventory: Inventory) -> list[Finding]:
    wanted = workload.capabilities
    findings = []
    unknown = [c for c in wanted if c not in names.CAPABILITIES]
    if unknown:
        findings.append(
            _missing(
                workload,
                (),
                f"asks for unknown capabilities {', '.join(unknown)} "
                f"(known: {', '.join(names.CAPABILITIES)})",
                f"Correct {names.CAPABILITIES_ANNOTATION} to name capabilities from the catalog.",
            )
        )
    if workload.labels.get(names.INJECT_LABEL) == "false":
        findings.append(
            _missing(
                workload,
                (),
                f"asks for capabilities but opts out of injection with {names.INJECT_LABEL}=false",
                f"Remove the {names.INJECT_LABEL}=false label, "
                f"or the {names.CAPABILITIES_ANNOTATION} annotation.",
            )
        )
    namespace = inventory.namespace(workload.namespace) if workload.namespace else None
    if namespace is None:
        return findings
    state = namespace.labels.get(names.INJECTION_LABEL)
    if state != ENABLED:
        label = (
            "no " + names.INJECTION_LABEL + " label" if state is None else f"{names.INJECTION_LABEL}={state}"
        )
        findings.append(
            _missing(
                workload,
                (namespace.ref,),
                f"asks for capabilities ({', '.join(wanted)}) but namespace {namespace.name!r} has {label}",
                f"Run `remora enable-namespace {namespace.name} --capabilities {','.join(wanted)} "
                f"--service-account {workload.service_account}` (it labels the namespace and binds the "
                f"capability roles), or `kubectl label namespace {namespace.name} "
                f"{names.INJECTION_LABEL}={ENABLED} --overwrite`; then restart the agent pods.",
            )
        )
    allowed_value = namespace.annotations.get(names.ALLOWED_CAPABILITIES_ANNOTATION)
    if allowed_value is not None:
        allowed = names.parse_capability_list(allowed_value)
        refused = [c for c in wanted if c not in allowed and c in names.CAPABILITIES]
        if refused:
            findings.append(
                _missing(
                    workload,
                    (namespace.ref,),
                    f"asks for {', '.join(refused)}, which namespace {namespace.name!r} does not allow "
                    f"({names.ALLOWED_CAPABILITIES_ANNOTATION}: {allowed_value!r})",
                    f"Add them to the namespace's {names.ALLOWED_CAPABILITIES_ANNOTATION} annotation, or "
                    "drop them from the pod's annotation.",
                )
            )
    return findings


def _missing(workload: Workload, extra: tuple[ObjectRef, ...], problem: str, fix: str) -> Finding:
    return Finding(
        rule=ID,
        severity=Severity.ERROR,
        objects=(workload.ref, *extra),
        message=f"{workload.ref} {problem}: no operator will be injected",
        why=WHY_MISSING,
        fix=fix,
        details={"capabilities": workload.capabilities},
    )


def _unused(namespace: Resource, inventory: Inventory) -> Finding | None:
    if namespace.labels.get(names.INJECTION_LABEL) != ENABLED:
        return None
    workloads = inventory.workloads_in(namespace.name)
    if (not workloads and not inventory.live) or any(w.capabilities for w in workloads):
        return None
    agents = [w for w in workloads if "agent" in recognize.tokens(" ".join([w.name, *w.labels.values()]))]
    if agents:
        subject = f"its agent workloads ({', '.join(str(a.ref) for a in agents)})"
    else:
        subject = f"any of its {len(workloads)} workloads" if workloads else "any workload"
    return Finding(
        rule=ID,
        severity=Severity.WARNING if agents else Severity.INFO,
        objects=(namespace.ref, *(a.ref for a in agents)),
        message=f"namespace {namespace.name!r} turns injection on, "
        f"but no capability is asked for by {subject}",
        why=(
            "Injection only adds operators to pods that name capabilities in "
            f"{names.CAPABILITIES_ANNOTATION}; without it the label does nothing but send every pod "
            "creation in the namespace through the webhook. If the agents do need capabilities, they run "
            "without them."
        ),
        fix=(
            f'Annotate the agents\' pod templates with {names.CAPABILITIES_ANNOTATION}: "build,test" (the '
            f"capabilities they use), or remove the {names.INJECTION_LABEL} label from the namespace."
        ),
        details={"workloads": [str(w.ref) for w in workloads]},
    )


RULE = Rule(
    ID, "Capabilities asked for where they will not be injected, or the reverse", Severity.ERROR, check
)
