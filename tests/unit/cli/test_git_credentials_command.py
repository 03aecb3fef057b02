"""`runyard git-credentials add` option rules, checked before anything is sent (the e2e tests cover the calls)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runyard.cli.main import cli


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((), "give --username and --password-file (HTTPS), or --ssh-key-file (SSH)"),
        (("--username", "u"), "give --username and --password-file"),
        (("--ssh-key-file", "KEY", "--username", "u"), "not both"),
        (("--username", "u", "--password-file", "PW", "--known-hosts-file", "PW"), "goes with --ssh-key-file"),
        (("--username", "u", "--password-file", "EMPTY"), "the password file is empty"),
        (("--username", "u", "--password-file", "MISSING"), "cannot read the password file"),
    ],
)
def test_add_refuses_options_that_do_not_fit(tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    files = {"KEY": tmp_path / "key", "PW": tmp_path / "pw", "EMPTY": tmp_path / "empty", "MISSING": tmp_path / "no"}
    files["KEY"].write_text("key\n")
    files["PW"].write_text("secret\n")
    files["EMPTY"].write_text("\n")
    args = [str(files[o]) if o in files else o for o in options]
    result = CliRunner().invoke(
        cli,
        ["git-credentials", "add", "c", "--url-prefix", "https://h", *args, "--data-dir", str(tmp_path / "data")],
        env={"RUNYARD_ACCESS_KEY_ID": "AKIAEXAMPLE", "RUNYARD_SECRET_ACCESS_KEY": "secret"},
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "secret\n" not in result.output
