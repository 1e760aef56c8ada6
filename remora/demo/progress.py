"""Progress as the demo's work items move: one line per transition, then a summary table.

An item goes queued -> claimed -> resource -> job -> running -> succeeded (or failed).
The stages are observed by polling, so a fast item may skip one; lines only ever go
forward, never repeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

STAGES = ("queued", "claimed", "resource", "job", "running", "succeeded", "failed")
FINAL = ("succeeded", "failed")


@dataclass
class ItemProgress:
    item_id: str
    capability: str
    stage: str = ""
    seen: dict[str, float] = field(default_factory=dict)
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.stage in FINAL


class Progress:
    """Prints each item's transitions as they are seen, with the time since the work was queued."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.items: dict[str, ItemProgress] = {}
        self.t0 = time.monotonic()

    def add(self, item_id: str, capability: str) -> None:
        self.items[item_id] = ItemProgress(item_id, capability)

    def see(self, item_id: str, stage: str, detail: str = "") -> None:
        item = self.items.get(item_id)
        if item is None or item.done:
            return
        if item.stage and STAGES.index(stage) <= STAGES.index(item.stage):
            return
        item.stage = stage
        item.seen[stage] = time.monotonic() - self.t0
        item.detail = detail
        width = max(len(i) for i in self.items)
        self.write(f"  {item.seen[stage]:6.1f}s  {item_id:<{width}}  {stage:<9}  {detail}\n")

    def all_done(self) -> bool:
        return all(item.done for item in self.items.values())

    def pending(self) -> list[str]:
        return [f"{i.item_id} ({i.stage or 'not queued'})" for i in self.items.values() if not i.done]

    def summary(self) -> str:
        rows = [("ITEM", "CAPABILITY", "OUTCOME", "QUEUED->CLAIMED", "->DONE", "RESULT")]
        for item in self.items.values():
            claimed = _span(item, "queued", "claimed")
            total = _span(item, "queued", item.stage) if item.done else "-"
            rows.append((item.item_id, item.capability, item.stage or "-", claimed, total, item.detail))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
                 for row in rows]  # fmt: skip
        return "\n".join(line.rstrip() for line in lines)


def _span(item: ItemProgress, start: str, end: str) -> str:
    if start in item.seen and end in item.seen:
        return f"{item.seen[end] - item.seen[start]:.1f}s"
    return "-"
