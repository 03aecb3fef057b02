"""Revisioned configurations (auto scaling, observability): numbering, Latest, partial ARNs.

Revisions of a name count up from 1. Once every revision of a name is deleted, numbering starts
again at 1 (observed on the real service) — each restart is a new generation. Deleted revisions
stay describable as INACTIVE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from runyard.control.arns import ArnRef
from runyard.control.model.apprunner import ACTIVE
from runyard.errors import NotFound, QuotaExceeded


class Revisioned(Protocol):
    @property
    def arn(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def generation(self) -> int: ...
    @property
    def status(self) -> str: ...


V = TypeVar("V", bound=Revisioned)


def active(items: Sequence[V]) -> list[V]:
    return [item for item in items if item.status == ACTIVE]


def next_revision(same_name: Sequence[V]) -> tuple[int, int]:
    """(generation, revision) for a new revision, given every stored record of that name."""
    live = active(same_name)
    if live:
        generation = live[0].generation
        used = [item.revision for item in same_name if item.generation == generation]
        return generation, max(used) + 1
    generation = max((item.generation for item in same_name), default=0) + 1
    return generation, 1


def latest_arns(items: Sequence[V]) -> set[str]:
    """ARNs of the active revision with the highest number, per name."""
    best: dict[str, V] = {}
    for item in active(items):
        current = best.get(item.name)
        if current is None or item.revision > current.revision:
            best[item.name] = item
    return {item.arn for item in best.values()}


def listing(items: Sequence[V], *, name: str | None, latest_only: bool) -> list[tuple[V, bool]]:
    """What a List call shows: active revisions (of one name if given), each with its Latest flag, by name
    and revision; with latest_only, only the latest revision of each name."""
    latest = latest_arns(items)
    chosen = [
        (item, item.arn in latest)
        for item in active(items)
        if (name is None or item.name == name) and (not latest_only or item.arn in latest)
    ]
    return sorted(chosen, key=lambda pair: (pair[0].name, pair[0].revision))


def resolve(ref: ArnRef, same_name: Sequence[V], *, label: str) -> V:
    """A full ARN names one record; `name/revision` prefers the active one; `name` means the latest active."""
    parts = ref.parts
    found: V | None = None
    if len(parts) >= 3:
        found = next((item for item in same_name if item.arn == ref.text), None)
    elif len(parts) == 2:
        if parts[1].isdigit():
            candidates = [item for item in same_name if item.revision == int(parts[1])]
            preferred = active(candidates) or candidates
            found = preferred[-1] if preferred else None
    else:
        live = active(same_name)
        found = max(live, key=lambda item: item.revision) if live else None
    if found is None:
        raise NotFound(f"{label} not found: {ref.text}")
    return found


def plan_revision(
    everything: Sequence[V],
    name: str,
    *,
    names_quota: int,
    revisions_quota: int,
    label: str,
    provided: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    """Check the name and revision quotas for a new revision of `name`; return its (generation, revision).

    `provided` names (App Runner's own DefaultConfiguration) do not count against the names you create.
    """
    same_name = [item for item in everything if item.name == name]
    live_names = {item.name for item in active(everything) if item.name not in provided}
    if name not in live_names and name not in provided and len(live_names) >= names_quota:
        raise QuotaExceeded(f"You have reached the quota of {names_quota} {label} names in this region.")
    if len(active(same_name)) >= revisions_quota:
        raise QuotaExceeded(f"You have reached the quota of {revisions_quota} revisions for the {label} {name!r}.")
    return next_revision(same_name)
