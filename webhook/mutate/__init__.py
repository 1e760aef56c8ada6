"""Injection: should_inject (pure) -> render -> merge -> status -> patch.

`inject(pod, catalog, namespace)` gives the mutated pod; `patch(original, mutated)` the
RFC 6902 operations between them; `Mutator` is the admission handler that joins the two.
"""

from webhook.mutate.handler import Mutator
from webhook.mutate.inject import BadPod, Injection, check_shape, inject
from webhook.mutate.patch import patch
from webhook.mutate.policy import Denied, requested_capabilities, should_inject, skip_reason
from webhook.mutate.render import SIDECAR_PREFIX, TOKEN_VOLUME, render, sidecar_name

__all__ = [
    "SIDECAR_PREFIX",
    "TOKEN_VOLUME",
    "BadPod",
    "Denied",
    "Injection",
    "Mutator",
    "check_shape",
    "inject",
    "patch",
    "render",
    "requested_capabilities",
    "should_inject",
    "sidecar_name",
    "skip_reason",
]
