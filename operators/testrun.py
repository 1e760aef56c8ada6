"""The test capability: a TestRun becomes one Job; its counts come from the termination message.

The test image writes JSON to /dev/termination-log, for example
{"passed": 41, "failed": 1, "skipped": 2, "summary": "1 failure in test_login"}.
"""

from __future__ import annotations

from typing import Any, Final

from common.names import KIND_BY_CAPABILITY
from operators import jobs
from operators.capability import Capability
from operators.results import test_result

Obj = dict[str, Any]

KIND: Final = KIND_BY_CAPABILITY["test"]


def desired_job(resource: Obj) -> Obj:
    spec = resource["spec"]
    main = jobs.container(
        jobs.MAIN_CONTAINER,
        spec["image"],
        command=spec.get("command"),
        args=spec.get("args"),
        env=spec.get("env"),
        resources=spec.get("resources"),
        mounts=[{"name": "workspace", "mountPath": jobs.WORKSPACE}],
        working_dir=jobs.WORKSPACE,
    )
    return jobs.job(
        resource,
        jobs.job_name(resource, KIND.short_name),
        containers=[main],
        volumes=[{"name": "workspace", "emptyDir": {}}],
        backoff_limit=int(spec.get("retryLimit") or 0),
        active_deadline_seconds=spec.get("timeoutSeconds"),
    )


def capability() -> Capability:
    return Capability(KIND, desired_job, read_result=test_result)
