"""The agent loop: claim work, run it as capability resources, keep the leases, report outcomes.

One thread owns all state and makes every broker and API call; watcher threads only feed
it events through a queue. Each turn of the loop: take the events, extend the leases that
are due, report the outcomes that are known, and claim more work while there is room.

The life of an item here:

    claimed -> resource created (AlreadyExists: take the existing one over)
            -> lease extended every lease/3 while the resource runs
               (a cancel from the broker becomes spec.cancel=true on the resource)
            -> status.phase Succeeded/Failed/Unknown -> outcome reported -> resource deleted

A lease the broker says is lost means another agent may have the item now: the resource
is deleted, so the work is not done twice by choice. After a restart the agent finds its
resources by label and carries on with them, lease tokens read back from annotations.
On stop it claims nothing more, lets held work finish until the grace period is nearly
over, then releases what is left so another agent can start it at once.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from agent.client import BrokerClient, BrokerError, WorkItem
from agent.cluster import Cluster
from agent.podinfo import PodIdentity
from agent.resources import (
    being_deleted,
    desired_resource,
    item_of,
    name_of,
    outcome_of,
    resource_name,
    takeover_patch,
)
from agent.watch import Changed, Synced, Watcher
from common.kube import ApiError
from common.names import AGENT_LABEL, KIND_BY_CAPABILITY, Kind

log = logging.getLogger("remora.agent")
Obj = dict[str, Any]

REMEMBER_FINISHED: Final = 1024
RETRY_SECONDS: Final = 2.0
MAX_RETRY_SECONDS: Final = 30.0


@dataclass(frozen=True)
class AgentConfig:
    pod: PodIdentity
    capabilities: tuple[str, ...]
    max_items: int = 4
    lease_seconds: int = 60
    poll_min: float = 1.0
    poll_max: float = 30.0
    grace_seconds: float = 30.0

    @property
    def label_selector(self) -> str:
        return f"{AGENT_LABEL}={self.pod.name}"


@dataclass
class Held:
    """One item this agent holds a lease on, and where its work stands."""

    item_id: str
    token: str
    kind: Kind
    name: str
    next_extend: float
    outcome: tuple[str, Obj] | None = None
    next_report: float = 0.0
    report_delay: float = RETRY_SECONDS
    cancel_sent: bool = False
    uid: str | None = None  # of the resource: events about an earlier one of the same name are stale


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        broker: BrokerClient,
        cluster: Cluster,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.cluster = cluster
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.kinds = [KIND_BY_CAPABILITY[c] for c in config.capabilities]
        self.events: queue.Queue[Any] = queue.Queue()
        self.held: dict[str, Held] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._finished: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._synced: set[str] = set()
        self._stop_at: float | None = None
        self._poll_delay = config.poll_min
        self._next_poll = 0.0
        self._watch_stop = threading.Event()

    # -- running ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming; finish or release held work within the grace period.

        Safe from a signal handler: it only sets a value (no lock), which the loop sees within
        one wait (`max_wait`).
        """
        if self._stop_at is None:
            self._stop_at = self.clock()

    def run(self) -> int:
        log.info(
            "agent %s/%s claiming %s (at most %d at once)",
            self.config.pod.namespace,
            self.config.pod.name,
            ",".join(self.config.capabilities),
            self.config.max_items,
        )
        watchers = [
            Watcher(self.cluster, kind, self.config.label_selector, self.events, self._watch_stop)
            for kind in self.kinds
        ]
        for watcher in watchers:
            watcher.start()
        try:
            while not self._guarded_step():
                pass
        finally:
            self._watch_stop.set()
        log.info("agent stopped")
        return 0

    def _guarded_step(self) -> bool:
        """A surprise (a garbled API answer, say) costs one turn and a pause, not the agent:
        state lives in the broker and the resources, so the next turn picks up where this one fell."""
        try:
            return self.step()
        except Exception:
            log.exception("unexpected failure in the agent loop; carrying on in %.0fs", RETRY_SECONDS)
            time.sleep(RETRY_SECONDS)
            return False

    def step(self, max_wait: float = 0.25) -> bool:
        """One turn of the loop; True when the agent has stopped."""
        now = self.clock()
        if self._stop_at is not None:
            if not self.held:
                return True
            if now >= self._stop_deadline():
                self._release_all()
                return True
        self._take_events(max(0.0, min(max_wait, self._next_due() - now)))
        self._extend_due()
        self._report_due()
        if self._may_claim():
            self._poll()
        return False

    def _stop_deadline(self) -> float:
        started = self._stop_at if self._stop_at is not None else self.clock()
        grace = self.config.grace_seconds
        return started + grace - min(2.0, grace / 4)  # keep time to release

    def _next_due(self) -> float:
        due = [h.next_extend for h in self.held.values()]
        due += [h.next_report for h in self.held.values() if h.outcome is not None]
        if self._room_to_claim():
            due.append(self._next_poll)
        if self._stop_at is not None:
            due.append(self._stop_deadline())
        return min(due, default=self.clock() + 1.0)

    def _room_to_claim(self) -> bool:
        # No claims before every watched kind has been listed once: adopted work counts against room.
        return (
            self._stop_at is None
            and len(self._synced) == len(self.kinds)
            and len(self.held) < self.config.max_items
        )

    def _may_claim(self) -> bool:
        return self._room_to_claim() and self.clock() >= self._next_poll

    def _take_events(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            return
        for _ in range(10_000):
            self._handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _handle(self, event: Any) -> None:
        if isinstance(event, Synced):
            self._synced.add(event.kind.kind)
            present = {name_of(o) for o in event.objects}
            for obj in event.objects:
                self._observe(event.kind, obj)
            missing = [
                h
                for h in self.held.values()
                if h.kind is event.kind and h.name not in present and h.outcome is None
            ]
            for held in missing:
                if self._get(held) is None:  # not just a list taken before our create
                    self._vanished(held)
        elif isinstance(event, Changed):
            if event.type == "DELETED":
                item_id = self._by_name.get((event.kind.kind, name_of(event.obj)))
                gone = self.held.get(item_id) if item_id else None
                if gone is not None and gone.outcome is None and self._current(gone, event.obj, learn=False):
                    self._vanished(gone)
            else:
                self._observe(event.kind, event.obj)

    # -- resources -------------------------------------------------------------------------------

    def _observe(self, kind: Kind, obj: Obj) -> None:
        key = (kind.kind, name_of(obj))
        item_id = self._by_name.get(key)
        if item_id is None:
            if key in self._finished or being_deleted(obj):
                return
            recorded = item_of(obj)
            if recorded is None:
                log.warning("%s %s carries this agent's label but no item annotations; leaving it", *key)
                return
            item_id = self._adopt(kind, key[1], *recorded)
        held = self.held[item_id]
        if not self._current(held, obj):
            return
        if held.outcome is None:
            ended = outcome_of(obj)
            if ended is not None:
                log.info("item %s: %s %s ended %s", item_id, kind.kind, held.name, ended[0])
                held.outcome = ended
                held.next_report = self.clock()

    def _adopt(self, kind: Kind, name: str, item_id: str, token: str) -> str:
        """Carry on with a resource an earlier run of this agent created."""
        log.info("item %s: picking up %s %s from an earlier run", item_id, kind.kind, name)
        # Extend at once: that also tells whether the lease is still ours.
        self._hold(Held(item_id, token, kind, name, next_extend=self.clock()))
        return item_id

    def _hold(self, held: Held) -> None:
        self.held[held.item_id] = held
        self._by_name[(held.kind.kind, held.name)] = held.item_id
        self._finished.pop((held.kind.kind, held.name), None)

    @staticmethod
    def _current(held: Held, obj: Obj, *, learn: bool = True) -> bool:
        """Whether `obj` is the resource this lease runs on (learning its UID on first sight)."""
        uid = (obj.get("metadata") or {}).get("uid")
        if held.uid is None and learn:
            held.uid = uid
        return held.uid is not None and uid == held.uid

    def _forget(self, held: Held) -> None:
        self.held.pop(held.item_id, None)
        key = (held.kind.kind, held.name)
        self._by_name.pop(key, None)
        self._finished[key] = None
        while len(self._finished) > REMEMBER_FINISHED:
            self._finished.popitem(last=False)

    def _get(self, held: Held) -> Obj | None:
        try:
            return self.cluster.get(held.kind, held.name)
        except ApiError as exc:
            log.warning("item %s: cannot read %s %s: %s", held.item_id, held.kind.kind, held.name, exc)
            return {}  # unknown: not proof that it is gone

    def _vanished(self, held: Held) -> None:
        message = f"{held.kind.kind} {held.name} was deleted before it finished"
        log.warning("item %s: %s", held.item_id, message)
        held.outcome = (
            "unknown",
            {"message": message, "resource": {"kind": held.kind.kind, "name": held.name}},
        )
        held.next_report = self.clock()

    def _delete(self, held: Held) -> None:
        try:
            self.cluster.delete(held.kind, held.name)
        except ApiError as exc:
            # Left behind, it is found again by label on the next start and reported idempotently.
            log.warning("item %s: cannot delete %s %s: %s", held.item_id, held.kind.kind, held.name, exc)

    # -- claiming and starting work --------------------------------------------------------------

    def _poll(self) -> None:
        room = self.config.max_items - len(self.held)
        try:
            result = self.broker.claim(
                self.config.pod.name, list(self.config.capabilities), room, self.config.lease_seconds
            )
        except BrokerError as exc:
            log.warning("claim failed: %s", exc)
            self._back_off_polling()
            return
        for item_id in result.cancel_requested:
            if item_id in self.held:
                self._pass_cancel(self.held[item_id])
        for item in result.items:
            self._start(item)
        if result.items:
            self._poll_delay = self.config.poll_min
            self._next_poll = self.clock()
        else:
            self._back_off_polling()

    def _back_off_polling(self) -> None:
        self._next_poll = self.clock() + self._poll_delay * self.rng.uniform(0.5, 1.0)
        self._poll_delay = min(self._poll_delay * 2, self.config.poll_max)

    def _start(self, item: WorkItem) -> None:
        token = item.lease.token if item.lease else None
        kind = KIND_BY_CAPABILITY.get(item.capability)
        if token is None or kind is None or item.capability not in self.config.capabilities:
            log.error(
                "broker handed out item %s for %r, which this agent did not ask for", item.id, item.capability
            )
            if token:
                self._release(item.id, token)
            return
        held = Held(item.id, token, kind, resource_name(item.id), next_extend=self._extend_time())
        self._hold(held)  # before the create, so its watch events find the item
        body = desired_resource(kind, item.id, item.parameters, self.config.pod, token)
        try:
            created = self.cluster.create(kind, body)
        except ApiError as exc:
            self._create_failed(held, exc)
            return
        log.info("item %s (attempt %d): created %s %s", item.id, item.attempts, kind.kind, held.name)
        self._observe(kind, created)

    def _create_failed(self, held: Held, exc: ApiError) -> None:
        if exc.already_exists:
            self._take_over(held)
        elif exc.status in (400, 422):
            # The parameters do not make a valid spec: retrying cannot help, the submitter must fix them.
            log.warning("item %s: parameters refused by the API: %s", held.item_id, exc.message)
            held.outcome = (
                "failed",
                {"reason": "InvalidParameters", "message": exc.message, "kind": held.kind.kind},
            )
            held.next_report = self.clock()
        else:
            log.warning(
                "item %s: cannot create %s: %s; giving the item back", held.item_id, held.kind.kind, exc
            )
            self._release(held.item_id, held.token)
            self._forget(held)
            self._back_off_polling()

    def _take_over(self, held: Held) -> None:
        """The resource exists already (an earlier attempt): make it this lease's and carry on with it."""
        try:
            existing = self.cluster.get(held.kind, held.name)
            recorded = item_of(existing) if existing else None
            if existing is not None and recorded is not None and recorded[0] != held.item_id:
                message = f"{held.kind.kind} {held.name} already exists for another item ({recorded[0]})"
                held.outcome = ("failed", {"reason": "NameTaken", "message": message})
                held.next_report = self.clock()
                return
            patched = self.cluster.merge_patch(
                held.kind, held.name, takeover_patch(self.config.pod, held.token)
            )
        except ApiError as exc:
            patched = None
            log.warning("item %s: cannot take over %s %s: %s", held.item_id, held.kind.kind, held.name, exc)
        if patched is None:
            self._release(held.item_id, held.token)
            self._forget(held)
            return
        log.info(
            "item %s: %s %s already exists; carrying on with it", held.item_id, held.kind.kind, held.name
        )
        self._observe(held.kind, patched)

    # -- leases ----------------------------------------------------------------------------------

    def _extend_time(self) -> float:
        return self.clock() + self.config.lease_seconds / 3

    def _extend_due(self) -> None:
        now = self.clock()
        for held in [h for h in self.held.values() if h.next_extend <= now]:
            try:
                item = self.broker.extend(held.item_id, held.token, self.config.lease_seconds)
            except BrokerError as exc:
                if exc.lease_lost:
                    self._lease_lost(held, exc)
                else:
                    log.warning("item %s: lease extension failed: %s", held.item_id, exc)
                    held.next_extend = now + min(RETRY_SECONDS, self.config.lease_seconds / 6)
                continue
            held.next_extend = self._extend_time()
            if item.cancel_requested:
                self._pass_cancel(held)

    def _pass_cancel(self, held: Held) -> None:
        if held.cancel_sent or held.outcome is not None:
            return
        try:
            self.cluster.merge_patch(held.kind, held.name, {"spec": {"cancel": True}})
        except ApiError as exc:
            log.warning("item %s: cannot pass the cancel on: %s (will retry)", held.item_id, exc)
            return
        log.info(
            "item %s: cancelled at the broker; set spec.cancel on %s %s",
            held.item_id,
            held.kind.kind,
            held.name,
        )
        held.cancel_sent = True

    def _lease_lost(self, held: Held, exc: BrokerError) -> None:
        log.warning(
            "item %s: lease lost (%s); deleting %s %s", held.item_id, exc.message, held.kind.kind, held.name
        )
        self._delete(held)
        self._forget(held)

    def _release(self, item_id: str, token: str) -> None:
        try:
            self.broker.release(item_id, token)
        except BrokerError as exc:
            log.warning("item %s: release failed (%s); the lease will expire instead", item_id, exc)

    # -- outcomes --------------------------------------------------------------------------------

    def _report_due(self) -> None:
        now = self.clock()
        for held in [h for h in self.held.values() if h.outcome is not None and h.next_report <= now]:
            self._report(held)

    def _report(self, held: Held) -> bool:
        if held.outcome is None:
            return False
        outcome, details = held.outcome
        try:
            self.broker.report(held.item_id, held.token, outcome, details)
        except BrokerError as exc:
            if exc.transient:
                log.warning("item %s: report failed: %s (will retry)", held.item_id, exc)
                held.next_report = self.clock() + held.report_delay * self.rng.uniform(0.5, 1.0)
                held.report_delay = min(held.report_delay * 2, MAX_RETRY_SECONDS)
                return False
            log.warning("item %s: broker refused the outcome: %s", held.item_id, exc)
        else:
            log.info("item %s: reported %s", held.item_id, outcome)
        self._delete(held)
        self._forget(held)
        return True

    def _release_all(self) -> None:
        """End of the grace period: report what is known, give everything else back."""
        for held in list(self.held.values()):
            if held.outcome is not None and self._report(held):
                continue
            log.info("item %s: releasing it for another agent", held.item_id)
            self._release(held.item_id, held.token)
            self._delete(held)
            self._forget(held)
