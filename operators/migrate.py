"""The migrate capability: a DatabaseMigration becomes one Job, one at a time per database.

The target database is a Secret in the resource's namespace (a name, never a namespace: a
migration cannot reach another namespace's credentials); its keys become the container's
environment (DATABASE_URL, say). A migration is never retried by the Job controller: a
half-applied migration needs a person, not a second run.
"""

from __future__ import annotations

from typing import Any, Final

from common.names import KIND_BY_CAPABILITY
from operators import jobs
from operators.capability import Capability
from operators.results import summary_result

Obj = dict[str, Any]

KIND: Final = KIND_BY_CAPABILITY["migrate"]


def database_secret(resource: Obj) -> str:
    return str(resource["spec"]["databaseSecretRef"]["name"])


def desired_job(resource: Obj) -> Obj:
    spec = resource["spec"]
    main = jobs.container(
        jobs.MAIN_CONTAINER,
        spec["image"],
        command=spec.get("command"),
        args=spec.get("args"),
        env=spec.get("env"),
        env_from=[{"secretRef": {"name": database_secret(resource)}}],
        resources=spec.get("resources"),
        mounts=[{"name": "workspace", "mountPath": jobs.WORKSPACE}],
        working_dir=jobs.WORKSPACE,
    )
    return jobs.job(
        resource,
        jobs.job_name(resource, KIND.short_name),
        containers=[main],
        volumes=[{"name": "workspace", "emptyDir": {}}],
        backoff_limit=0,
        active_deadline_seconds=spec.get("timeoutSeconds"),
    )


def capability() -> Capability:
    return Capability(
        KIND,
        desired_job,
        read_result=summary_result,
        exclusive_key=database_secret,
        exclusive_what="database Secret",
    )
