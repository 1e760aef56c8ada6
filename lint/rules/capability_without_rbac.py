"""capability-without-rbac: an agent's service account lacks permissions its capability
operators need (live clusters only).

The injected operators run in the agent's pod, as the agent's service account, in its
namespace. Per capability they need: get/list/watch on the capability kind, update/patch
on its status subresource; and for all of them: create/get/list/watch/delete on batch
Jobs, get/list/watch on Pods, create on Events (events.k8s.io, the API the operators
record with). A missing permission is an error, except Events alone: the operators drop
events they may not write and carry on, so that is a warning. `questions()` lists what
to ask; the cluster reader asks the API (one SubjectAccessReview each) and puts the
answers in the inventory, so this check stays a pure function of the inventory.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from common import names
from lint.model import AccessAnswer, AccessQuestion, Finding, Inventory, ObjectRef, Severity, Workload
from lint.rules.rule import Rule

ID = "capability-without-rbac"
KIND_VERBS = ("get", "list", "watch")
STATUS_VERBS = ("update", "patch")
EVENTS_GROUP = "events.k8s.io"
SHARED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("batch", "jobs", ("create", "get", "list", "watch", "delete")),
    ("", "pods", ("get", "list", "watch")),
    (EVENTS_GROUP, "events", ("create",)),
)


def required(namespace: str, service_account: str, capabilities: list[str]) -> list[AccessQuestion]:
    """The permissions the operators of these capabilities need, as access questions."""
    wanted: list[AccessQuestion] = []
    for capability in capabilities:
        kind = names.KIND_BY_CAPABILITY.get(capability)
        if kind is None:
            continue  # unknown capabilities are capability-without-injection's to report
        wanted += [
            AccessQuestion(namespace, service_account, v, names.GROUP, kind.plural) for v in KIND_VERBS
        ]
        wanted += [
            AccessQuestion(namespace, service_account, v, names.GROUP, kind.plural, "status")
            for v in STATUS_VERBS
        ]
    if wanted:
        for group, resource, verbs in SHARED:
            wanted += [AccessQuestion(namespace, service_account, v, group, resource) for v in verbs]
    return wanted


def _agents(inventory: Inventory) -> dict[tuple[str, str], list[Workload]]:
    by_account: dict[tuple[str, str], list[Workload]] = defaultdict(list)
    for workload in inventory.workloads:
        if workload.capabilities and workload.namespace:
            by_account[(workload.namespace, workload.service_account)].append(workload)
    return by_account


def questions(inventory: Inventory) -> list[AccessQuestion]:
    """Every access question this rule needs answered, each once, in a stable order."""
    found: set[AccessQuestion] = set()
    for (namespace, account), workloads in _agents(inventory).items():
        capabilities = sorted({c for w in workloads for c in w.capabilities})
        found.update(required(namespace, account, capabilities))
    return sorted(found)


def check(inventory: Inventory) -> list[Finding]:
    if inventory.access is None:
        return []
    findings = []
    for (namespace, account), workloads in sorted(_agents(inventory).items()):
        capabilities = sorted({c for w in workloads for c in w.capabilities})
        asked = required(namespace, account, capabilities)
        answers = {q: inventory.access.get(q, AccessAnswer(None, "not asked")) for q in asked}
        denied = [q for q, a in answers.items() if a.allowed is False]
        unknown = [q for q, a in answers.items() if a.allowed is None]
        objects = (ObjectRef("ServiceAccount", namespace, account), *sorted(w.ref for w in workloads))
        if denied:
            findings.append(_denied(namespace, account, capabilities, denied, objects))
        if unknown:
            reasons = sorted({answers[q].reason for q in unknown if answers[q].reason})
            findings.append(
                Finding(
                    rule=ID,
                    severity=Severity.INFO,
                    objects=objects,
                    message=f"could not check {len(unknown)} permission(s) of service account "
                    f"{namespace}/{account}: {'; '.join(reasons) or 'no answer'}",
                    why="The access reviews failed, so this rule cannot tell whether the operators work.",
                    fix="Run remora lint --cluster as a user allowed to create subjectaccessreviews.",
                    details={"unchecked": [q.describe() for q in unknown]},
                )
            )
    return findings


def _denied(
    namespace: str,
    account: str,
    capabilities: list[str],
    denied: list[AccessQuestion],
    objects: tuple[ObjectRef, ...],
) -> Finding:
    role = _role(denied)
    only_events = all(q.group == EVENTS_GROUP for q in denied)
    if only_events:
        why = (
            "The injected operators use the agent pod's service account. They record what they do "
            "as Events on the capability resources; without this permission every event is dropped, "
            "so `kubectl describe` shows nothing of why a build or test went the way it did."
        )
    else:
        why = (
            "The injected operators use the agent pod's service account. Without these permissions "
            "they cannot watch their resources, create or watch Jobs, or write status: capability "
            "resources stay pending, and the operators' logs fill with 403 Forbidden."
        )
    return Finding(
        rule=ID,
        severity=Severity.WARNING if only_events else Severity.ERROR,
        objects=objects,
        message=f"service account {namespace}/{account} runs capability operators "
        f"({', '.join(capabilities)}) but may not: {', '.join(q.describe() for q in denied)}",
        why=why,
        fix=(
            f"Run `remora enable-namespace {namespace} --capabilities {','.join(capabilities)} "
            f"--service-account {account}` to bind the capability roles the Helm chart installs, or "
            f"bind a Role in namespace {namespace} to service account {account} that grants: "
            + "; ".join(_grant(rule) for rule in role)
            + " (details.role_rules in the JSON report)."
        ),
        details={"missing": [q.describe() for q in denied], "role_rules": role},
    )


def _grant(rule: dict[str, Any]) -> str:
    return f"{', '.join(rule['verbs'])} on {', '.join(rule['resources'])} ({rule['apiGroups'][0] or 'core'})"


def _role(denied: list[AccessQuestion]) -> list[dict[str, Any]]:
    """Role rules granting exactly the denied permissions, one rule per group and resource."""
    verbs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for q in denied:
        resource = q.resource + (f"/{q.subresource}" if q.subresource else "")
        verbs[(q.group, resource)].append(q.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(set(v))}
        for (group, resource), v in sorted(verbs.items())
    ]


RULE = Rule(
    ID, "An agent's service account lacks what its capability operators need", Severity.ERROR, check, True
)
