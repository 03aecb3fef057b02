"""What every control-plane command needs: where it acts, and the injected collaborators."""

from __future__ import annotations

from dataclasses import dataclass

from runyard.clock import Clock
from runyard.config import Quotas
from runyard.control.ports import Store
from runyard.ids import IdSource


@dataclass(frozen=True, slots=True)
class Scope:
    """The account and region a request acts in (the region comes from the SigV4 credential scope)."""

    account: str
    region: str


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    clock: Clock
    ids: IdSource
    quotas: Quotas
    domain_suffix: str
