from __future__ import annotations

from dataclasses import dataclass

import pytest

from runyard.control import revisions
from runyard.control.arns import ArnRef
from runyard.errors import NotFound


@dataclass(frozen=True)
class Rev:
    arn: str
    name: str
    revision: int
    generation: int
    status: str


def _rev(revision: int, status: str = "ACTIVE", generation: int = 1, name: str = "a") -> Rev:
    return Rev(f"arn/{name}/{revision}/g{generation}", name, revision, generation, status)


def test_numbering_counts_up_and_restarts_after_everything_is_deleted() -> None:
    assert revisions.next_revision([]) == (1, 1)
    assert revisions.next_revision([_rev(1), _rev(2)]) == (1, 3)
    # a deleted top revision is not reused while the name lives
    assert revisions.next_revision([_rev(1), _rev(2, "INACTIVE")]) == (1, 3)
    # every revision deleted: a new generation starts at 1 again
    assert revisions.next_revision([_rev(1, "INACTIVE"), _rev(2, "INACTIVE")]) == (2, 1)
    later = [_rev(1, "INACTIVE"), _rev(2, "INACTIVE"), _rev(1, generation=2)]
    assert revisions.next_revision(later) == (2, 2)


def test_latest_is_the_highest_active_revision_per_name() -> None:
    items = [_rev(1), _rev(2), _rev(3, "INACTIVE"), _rev(1, name="b")]
    assert revisions.latest_arns(items) == {"arn/a/2/g1", "arn/b/1/g1"}


def test_partial_arns() -> None:
    items = [_rev(1, "INACTIVE"), _rev(1, generation=2), _rev(2, generation=2)]
    assert revisions.resolve(ArnRef("x", "t", ("a",)), items, label="c").arn == "arn/a/2/g2"
    assert revisions.resolve(ArnRef("x", "t", ("a", "1")), items, label="c").arn == "arn/a/1/g2"
    assert revisions.resolve(ArnRef("arn/a/1/g1", "t", ("a", "1", "g1")), items, label="c").status == "INACTIVE"
    for parts in [("a", "9"), ("a", "x")]:
        with pytest.raises(NotFound):
            revisions.resolve(ArnRef("x", "t", parts), items, label="c")
    with pytest.raises(NotFound):  # callers pass the records of the ARN's name: none for an unknown name
        revisions.resolve(ArnRef("x", "t", ("b",)), [], label="c")
    with pytest.raises(NotFound):  # a name whose revisions are all deleted has no latest
        revisions.resolve(ArnRef("x", "t", ("a",)), [_rev(1, "INACTIVE")], label="c")
