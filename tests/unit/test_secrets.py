from __future__ import annotations

import stat
from pathlib import Path

import pytest

from runyard.secrets import KEY_FILE, SecretBox, SecretsError, new_key_text


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = box.seal("ghp_secret", context="arn:one")
    # A second start reads the same key: what was sealed still opens.
    assert SecretBox.load_or_create(tmp_path / "data").open(sealed, context="arn:one") == "ghp_secret"


def test_sealed_text_hides_the_secret_and_differs_each_time(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path)
    first, second = box.seal("ghp_secret", context="c"), box.seal("ghp_secret", context="c")
    assert first != second
    assert "ghp_secret" not in first and first.startswith("v1:")


def test_wrong_context_wrong_key_or_damage_do_not_open(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path)
    sealed = box.seal("token", context="arn:a")
    with pytest.raises(SecretsError):
        box.open(sealed, context="arn:b")
    with pytest.raises(SecretsError):
        SecretBox.load_or_create(tmp_path / "other").open(sealed, context="arn:a")
    with pytest.raises(SecretsError):
        box.open(sealed[:-4] + "AAAA", context="arn:a")
    with pytest.raises(SecretsError):
        box.open("plain", context="arn:a")


def test_operator_key_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    key = new_key_text()
    box = SecretBox.load_or_create(tmp_path, key)
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox.load_or_create(tmp_path / "x", key).open(box.seal("t", context="c"), context="c") == "t"


@pytest.mark.parametrize("bad", ["not base64!!", "c2hvcnQ"])
def test_malformed_operator_key_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SecretsError, match="RUNYARD_SECRETS_KEY"):
        SecretBox.load_or_create(tmp_path, bad)
