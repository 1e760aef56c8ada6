"""The build capability: a BuildRequest becomes one Job that runs the builder image.

The source, when given, is ready in /workspace/source before the builder starts: a git URL and
revision fetched by an init container (URL and revision are passed as arguments, never
spliced into the shell script), or a ConfigMap mounted read-only.
"""

from __future__ import annotations

from typing import Any, Final

from common.names import KIND_BY_CAPABILITY
from operators import jobs
from operators.capability import Capability
from operators.results import summary_result

Obj = dict[str, Any]

KIND: Final = KIND_BY_CAPABILITY["build"]
DEFAULT_GIT_IMAGE: Final = "alpine/git:2.47.2"
SOURCE_DIR: Final = f"{jobs.WORKSPACE}/source"
FETCH_SCRIPT: Final = (
    'git clone --quiet --no-checkout -- "$1" "$3" && cd "$3" '
    '&& git -c advice.detachedHead=false checkout --quiet "$2"'
)
FETCH_RESOURCES: Final = {
    "limits": {"cpu": "500m", "memory": "256Mi"},
    "requests": {"cpu": "50m", "memory": "64Mi"},
}


def desired_job(resource: Obj, *, git_image: str = DEFAULT_GIT_IMAGE) -> Obj:
    spec = resource["spec"]
    workspace = {"name": "workspace", "mountPath": jobs.WORKSPACE}
    mounts: list[Obj] = [workspace]
    volumes: list[Obj] = [{"name": "workspace", "emptyDir": {}}]
    init_containers: list[Obj] = []
    working_dir = jobs.WORKSPACE
    source = spec.get("source") or {}
    if source.get("git"):
        git = source["git"]
        init_containers.append(
            jobs.container(
                "fetch-source",
                git_image,
                command=["sh", "-c", FETCH_SCRIPT, "fetch-source"],
                args=[git["url"], git.get("revision") or "HEAD", SOURCE_DIR],
                env=[{"name": "HOME", "value": "/tmp"}],  # noqa: S108 - an emptyDir
                resources=FETCH_RESOURCES,
                mounts=[workspace],
            )
        )
        working_dir = SOURCE_DIR
    elif source.get("configMap"):
        volumes.append({"name": "source", "configMap": {"name": source["configMap"]["name"]}})
        mounts.append({"name": "source", "mountPath": SOURCE_DIR, "readOnly": True})
        working_dir = SOURCE_DIR
    main = jobs.container(
        jobs.MAIN_CONTAINER,
        spec["image"],
        command=spec.get("command"),
        args=spec.get("args"),
        env=spec.get("env"),
        resources=spec.get("resources"),
        mounts=mounts,
        working_dir=working_dir,
    )
    return jobs.job(
        resource,
        jobs.job_name(resource, KIND.short_name),
        containers=[main],
        init_containers=init_containers,
        volumes=volumes,
        backoff_limit=int(spec.get("retryLimit") or 0),
        active_deadline_seconds=spec.get("timeoutSeconds"),
    )


def capability(*, git_image: str = DEFAULT_GIT_IMAGE) -> Capability:
    return Capability(KIND, lambda r: desired_job(r, git_image=git_image), read_result=summary_result)
