"""`remora certs bootstrap`: make the certificates and the caBundle valid, once.

It runs the same planner as the rotation, until nothing is left to do: on a fresh
cluster it creates the CA and serving certificate, stores them and publishes the CA;
run again over a valid state it changes nothing. A CA rotation that needs to wait for
propagation is started and left for the webhook's rotation to finish, unless asked to wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from certs import bundle, webhooks
from certs.plan import NOTHING, WAIT, Decision
from certs.rotation import RotationConfig, Rotator


@dataclass(frozen=True)
class Outcome:
    steps: tuple[Decision, ...]
    changed: bool
    finished: bool

    def lines(self) -> list[str]:
        out = [f"{d.action}: {d.reason}" for d in self.steps]
        final = self.steps[-1].state if self.steps else None
        if final and final.ca:
            out.append(f"CA: {bundle.describe(final.ca.cert)}")
        if final and final.serving:
            out.append(f"serving: {bundle.describe(final.serving.cert)}")
        if not self.finished:
            out.append(
                "a CA rotation is in progress; the webhook's rotation finishes it (or run with --wait)"
            )
        return out


def bootstrap(api: Any, config: RotationConfig, *, wait: bool = False, max_steps: int = 32) -> Outcome:
    # Fail early, with the names, when there is nothing to write the caBundle into.
    webhooks.find(api, config.target)
    steps = Rotator(api, config).converge(max_steps=max_steps, wait=wait)
    changed = any(d.action not in (NOTHING, WAIT) for d in steps)
    finished = bool(steps) and steps[-1].action == NOTHING
    return Outcome(tuple(steps), changed, finished)
