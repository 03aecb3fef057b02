"""Explicit transition tables: a status changes only along an edge the table names."""

from __future__ import annotations

from collections.abc import Mapping

from runyard.errors import InvalidState


class TransitionTable:
    def __init__(self, kind: str, edges: Mapping[str, frozenset[str]]) -> None:
        self.kind = kind
        self.edges = edges

    def allows(self, current: str, target: str) -> bool:
        return target in self.edges.get(current, frozenset())

    def check(self, current: str, target: str) -> str:
        if not self.allows(current, target):
            raise InvalidState(f"The {self.kind} is {current} and cannot become {target}.")
        return target
