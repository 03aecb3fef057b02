from __future__ import annotations

import pytest

from runyard.api.pagination import paginate
from runyard.errors import InvalidInput


def _all_pages(items: list[int], size: int) -> list[list[int]]:
    pages, token = [], None
    while True:
        page, token = paginate(items, key=lambda i: (i,), max_results=size, next_token=token, query={"f": 1})
        pages.append(page)
        if token is None:
            return pages


def test_pages_cover_everything_once_and_the_last_has_no_token() -> None:
    assert _all_pages(list(range(7, 0, -1)), 3) == [[1, 2, 3], [4, 5, 6], [7]]
    assert _all_pages([1, 2, 3], 3) == [[1, 2, 3]]
    assert _all_pages([], 3) == [[]]


def test_without_max_results_everything_comes_back() -> None:
    assert paginate(list(range(50)), key=lambda i: (i,), max_results=None, next_token=None, query={}) == (
        list(range(50)),
        None,
    )


def test_a_deleted_anchor_does_not_break_the_next_page() -> None:
    page, token = paginate([1, 2, 3, 4], key=lambda i: (i,), max_results=2, next_token=None, query={})
    assert page == [1, 2]
    rest, _ = paginate([1, 3, 4], key=lambda i: (i,), max_results=2, next_token=token, query={})
    assert rest == [3, 4]


def test_bad_and_foreign_tokens_are_rejected() -> None:
    _, token = paginate([1, 2, 3], key=lambda i: (i,), max_results=1, next_token=None, query={"name": "a"})
    assert token is not None
    with pytest.raises(InvalidInput, match="does not belong"):
        paginate([1, 2, 3], key=lambda i: (i,), max_results=1, next_token=token, query={"name": "b"})
    for garbage in ["!!!", "e30", token[:-3]]:
        with pytest.raises(InvalidInput):
            paginate([1, 2, 3], key=lambda i: (i,), max_results=1, next_token=garbage, query={"name": "a"})
