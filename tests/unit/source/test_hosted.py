from __future__ import annotations

from pathlib import Path

import pytest

from runyard.source.git import SourceError
from runyard.source.hosted import HostedRepositories


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x.git", "a" * 101, "sp ace"])
def test_repository_names_stay_inside_the_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError):
        HostedRepositories(tmp_path).path(name)


def test_a_repository_is_a_bare_repository_on_main(tmp_path: Path) -> None:
    repositories = HostedRepositories(tmp_path / "git")
    path = repositories.ensure("my-app")
    assert (path / "HEAD").read_text().strip() == "ref: refs/heads/main"
    assert repositories.branches("my-app") == {} and repositories.branches("other") == {}
    assert repositories.url_for_services("my-app") == path.resolve().as_uri()
