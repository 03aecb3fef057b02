"""The interfaces the control plane needs from the outside; store/ implements them."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import ClassVar, Protocol, TypeVar


class Resource(Protocol):
    KIND: ClassVar[str]

    @property
    def key(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> float: ...


R = TypeVar("R", bound=Resource)


class Repository(Protocol[R]):
    def get(self, key: str) -> R | None: ...

    def find(self, *, account: str, region: str | None = None, name: str | None = None) -> list[R]:
        """Matching resources in creation order (region None: every region)."""
        ...

    def add(self, item: R) -> None: ...
    def save(self, item: R) -> None: ...
    def remove(self, key: str) -> None: ...


Tag = tuple[str, str]


class TagStore(Protocol):
    def get(self, kind: str, key: str) -> list[Tag]: ...
    def merge(self, kind: str, key: str, tags: list[Tag]) -> None: ...
    def remove(self, kind: str, key: str, tag_keys: list[str]) -> None: ...
    def clear(self, kind: str, key: str) -> None: ...


class UnitOfWork(Protocol):
    tags: TagStore

    def repo(self, cls: type[R]) -> Repository[R]: ...


class Store(Protocol):
    def read(self) -> AbstractContextManager[UnitOfWork]:
        """A consistent snapshot for queries."""
        ...

    def write(self) -> AbstractContextManager[UnitOfWork]:
        """A serialized transaction: commits on success, changes nothing on any error."""
        ...
