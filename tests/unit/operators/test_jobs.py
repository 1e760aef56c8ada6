"""desired_job for every capability: one deterministic name, labels, one owner reference, hardened pods."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from operator_resources import resource

from operators import build, jobs, migrate, testrun
from webhook.validate import registry

CASES = [
    ("BuildRequest", build.desired_job),
    ("TestRun", testrun.desired_job),
    ("DatabaseMigration", migrate.desired_job),
]


def all_containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    spec = job["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize(("kind", "desired_job"), CASES)
def test_job_carries_the_design_labels_and_one_controller_reference(kind: str, desired_job: Any) -> None:
    res = resource(kind)
    job = desired_job(res)
    meta = job["metadata"]
    assert meta["namespace"] == "team-a"
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "remora", "remora.dev/agent": "agent-0"}
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "remora.dev/v1alpha1",
            "kind": kind,
            "name": "b1",
            "uid": "uid-of-b1",
            "controller": True,
        }
    ]
    assert "blockOwnerDeletion" not in meta["ownerReferences"][0]
    assert job == desired_job(res)  # pure and deterministic


@pytest.mark.parametrize(("kind", "desired_job"), CASES)
def test_job_pods_meet_the_hardened_level(kind: str, desired_job: Any) -> None:
    res = resource(kind, source={"git": {"url": "https://git.example/x.git", "revision": "main"}})
    pod = desired_job(res)["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0 and psc["runAsGroup"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in all_containers(desired_job(res)):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0 and sc["runAsGroup"] > 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["limits"]["memory"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert not any("hostPath" in v for v in pod["volumes"])


def test_timeout_and_retry_limit_become_deadline_and_backoff_limit() -> None:
    job = build.desired_job(resource(timeoutSeconds=90, retryLimit=3))
    assert job["spec"]["activeDeadlineSeconds"] == 90 and job["spec"]["backoffLimit"] == 3
    migration = migrate.desired_job(resource("DatabaseMigration", retryLimit=3))
    assert migration["spec"]["backoffLimit"] == 0  # a migration is never retried blindly


def test_user_resources_are_kept_and_a_memory_limit_is_added_only_when_missing() -> None:
    given_limits = {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "1"}}
    main = build.desired_job(resource(resources=given_limits))["spec"]["template"]["spec"]["containers"][0]
    assert main["resources"] == given_limits
    only_request = {"requests": {"memory": "3Gi"}}
    main = build.desired_job(resource(resources=only_request))["spec"]["template"]["spec"]["containers"][0]
    assert main["resources"]["limits"]["memory"] == "3Gi"  # never below the request
    main = build.desired_job(resource())["spec"]["template"]["spec"]["containers"][0]
    assert main["resources"] == {"limits": {"memory": "512Mi"}}


def test_git_source_is_fetched_by_an_init_container_with_arguments_not_shell_text() -> None:
    url = "https://git.example/x.git; rm -rf /"
    job = build.desired_job(resource(source={"git": {"url": url, "revision": "v1.2"}}))
    pod = job["spec"]["template"]["spec"]
    fetch = pod["initContainers"][0]
    assert fetch["command"] == ["sh", "-c", build.FETCH_SCRIPT, "fetch-source"]
    assert fetch["args"] == [url, "v1.2", "/workspace/source"]
    assert url not in build.FETCH_SCRIPT
    assert pod["containers"][0]["workingDir"] == "/workspace/source"


def test_configmap_source_is_mounted_read_only() -> None:
    job = build.desired_job(resource(source={"configMap": {"name": "src"}}))
    pod = job["spec"]["template"]["spec"]
    assert {"name": "source", "configMap": {"name": "src"}} in pod["volumes"]
    assert {"name": "source", "mountPath": "/workspace/source", "readOnly": True} in pod["containers"][0][
        "volumeMounts"
    ]
    assert "initContainers" not in pod


def test_migration_gets_its_database_secret_as_environment() -> None:
    main = migrate.desired_job(resource("DatabaseMigration"))["spec"]["template"]["spec"]["containers"][0]
    assert main["envFrom"] == [{"secretRef": {"name": "orders-db"}}]


def test_command_args_and_env_pass_through() -> None:
    env = [
        {"name": "A", "value": "1"},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]
    main = testrun.desired_job(resource("TestRun", command=["pytest"], args=["-q"], env=env))["spec"][
        "template"
    ]["spec"]["containers"][0]
    assert main["command"] == ["pytest"] and main["args"] == ["-q"] and main["env"] == env
    assert main["name"] == "main" and main["image"] == "registry.example/builder:1"


name_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=253)


@given(name_chars, st.uuids())
def test_job_names_are_valid_label_values_unique_per_uid(name: str, uid: Any) -> None:
    res = {"metadata": {"name": name, "uid": str(uid)}}
    job_name = jobs.job_name(res, "br")
    assert len(job_name) <= 63
    assert job_name[-1].isalnum() and all(c.isalnum() or c == "-" for c in job_name)
    assert job_name == jobs.job_name(res, "br")
    other = jobs.job_name({"metadata": {"name": name, "uid": str(uid) + "x"}}, "br")
    assert other != job_name


def test_job_outcome_ignores_unfinished_jobs() -> None:
    assert jobs.job_outcome({}) is None
    assert jobs.job_outcome({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}}) is None


def test_newest_termination_message_wins() -> None:
    def pod(message: str, finished: str) -> dict[str, Any]:
        state = {"terminated": {"message": message, "finishedAt": finished}}
        return {"status": {"containerStatuses": [{"name": "main", "state": state}]}}

    pods = [pod("old", "2026-01-01T00:00:00Z"), pod("new", "2026-01-02T00:00:00Z")]
    assert jobs.termination_message(pods) == "new"
    assert jobs.termination_message([]) is None
    assert jobs.termination_message([{"status": {"containerStatuses": [{"name": "sidecar"}]}}]) is None


@pytest.mark.parametrize(("kind", "desired_job"), CASES)
def test_job_pods_pass_the_webhooks_own_hardened_checks(kind: str, desired_job: Any) -> None:
    """The validating webhook judges Job pod templates; ours must pass at the strictest level."""
    res = resource(kind, source={"git": {"url": "https://git.example/x.git"}})
    template = desired_job(res)["spec"]["template"]
    evaluation = registry.DEFAULT_REGISTRY.evaluate("hardened", template["metadata"], template["spec"])
    assert evaluation.allowed, evaluation.forbidden_detail()
