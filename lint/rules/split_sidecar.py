"""split-sidecar: a helper that exchanges data with an application through a shared
PersistentVolumeClaim, but runs as a workload of its own.

Looks at: the `persistentVolumeClaim.claimName` volumes of every workload's pod
template, per namespace. Reports a helper workload (fluentd, filebeat, envoy, ...: see
lint.recognize) and another workload that mount the same claim: a warning when the other
is recognisably a main application (frontend, backend, api, app, web, server...), info
otherwise. Claims from a
StatefulSet's volumeClaimTemplates are per pod and never shared, so they do not count.
"""

from __future__ import annotations

from collections import defaultdict

from lint import recognize
from lint.model import Finding, Inventory, ObjectRef, Resource, Severity, Workload, as_dict, as_list, as_str
from lint.rules.rule import Rule

ID = "split-sidecar"


def check(inventory: Inventory) -> list[Finding]:
    claims: dict[tuple[str, str], list[Workload]] = defaultdict(list)
    for workload in inventory.workloads:
        for claim in _claims(workload):
            claims[(workload.namespace, claim)].append(workload)

    findings = []
    for (namespace, claim), sharing in sorted(claims.items()):
        helpers = [(w, r) for w in sharing if (r := recognize.workload_helper_role(w))]
        apps = [w for w in sharing if not recognize.workload_helper_role(w)]
        for helper, role in helpers:
            for app in apps:
                pvc = inventory.find(ObjectRef("PersistentVolumeClaim", namespace, claim))
                findings.append(
                    _finding(ObjectRef("PersistentVolumeClaim", namespace, claim), pvc, helper, role, app)
                )
    return findings


def _claims(workload: Workload) -> set[str]:
    found = set()
    for volume in map(as_dict, as_list(workload.spec.get("volumes"))):
        name = as_str(as_dict(volume.get("persistentVolumeClaim")).get("claimName"))
        if name:
            found.add(name)
    return found


def _finding(pvc_ref: ObjectRef, pvc: Resource | None, helper: Workload, role: str, app: Workload) -> Finding:
    claim = pvc_ref.name
    modes = as_list(as_dict(pvc.body.get("spec")).get("accessModes")) if pvc else []
    why = (
        f"{helper.ref} is a {role} that works on the data of {app.ref}, so the two belong together, "
        "but as separate workloads they are scheduled, scaled, updated and restarted apart, and they "
        "can only exchange data through shared network storage. The sidecar pattern's rule: a helper "
        "that extends one application container belongs in that application's pod."
    )
    if "ReadWriteOncePod" in modes:
        why += (
            " The claim is ReadWriteOncePod: only one pod may use it at a time, so one of them never starts."
        )
    elif "ReadWriteOnce" in modes:
        why += (
            " The claim is ReadWriteOnce: both pods must land on the same node, or one of them never starts."
        )
    fix = (
        f"Run the {role} as a sidecar in {app.ref}'s pod template: add it to initContainers with "
        "restartPolicy: Always (a native sidecar, Kubernetes 1.29+), share an emptyDir volume "
        f"instead of the claim {claim!r}, and delete {helper.ref}."
    )
    app_word = recognize.main_app_word(app)
    return Finding(
        rule=ID,
        # A recognised main application (frontend, api, ...) is the catalogue's case; any other
        # workload sharing a helper's claim is likely the same, but said more softly.
        severity=Severity.WARNING if app_word else Severity.INFO,
        objects=(app.ref, helper.ref, pvc_ref),
        message=f"{helper.ref} ({role}) shares the claim {claim!r} with {app.ref}: a sidecar split into its "
        "own workload",
        why=why,
        fix=fix,
        details={"claim": claim, "helper_role": role, "app_word": app_word or ""},
    )


RULE = Rule(
    ID, "A helper that shares a volume claim with an application runs apart from it", Severity.WARNING, check
)
