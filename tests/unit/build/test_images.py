"""The image of a code service: its artifact at the path the host built it, in the runtime's base image."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from runyard.build.images import CONTAINERFILE, EngineCredential, containerfile, context_tar


def test_the_artifact_is_copied_where_the_host_built_it() -> None:
    text = containerfile("localhost/runyard/base-python:host", "/data/builds/artifacts/abc", "")
    assert text.splitlines() == [
        "FROM localhost/runyard/base-python:host",
        'COPY . "/data/builds/artifacts/abc"',
        'WORKDIR "/data/builds/artifacts/abc"',
    ]
    assert containerfile("b", "/a", "python server.py").endswith('CMD ["/bin/sh", "-c", "python server.py"]\n')


def test_the_context_keeps_symlinks_and_puts_the_containerfile_at_its_root(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to("/usr/bin/python3.11")
    (tmp_path / "server.py").write_text("print('hi')\n")
    (tmp_path / CONTAINERFILE).write_text("FROM evil\n")  # the app's own file never replaces Runyard's
    with tempfile.TemporaryFile() as out:
        context_tar(tmp_path, "FROM base\n", out)
        with tarfile.open(fileobj=out) as tar:
            members = {member.name: member for member in tar.getmembers()}
            link = members["./.venv/bin/python"]
            assert link.issym() and link.linkname == "/usr/bin/python3.11"
            assert "./server.py" in members
            containerfiles = [name for name in members if name.endswith(CONTAINERFILE)]
            assert containerfiles == [CONTAINERFILE]
            extracted = tar.extractfile(CONTAINERFILE)
            assert extracted is not None and extracted.read() == b"FROM base\n"


def test_engine_credentials_are_sent_as_the_registry_auth_header_and_never_shown() -> None:
    credential = EngineCredential("deploy", "s3cret")
    assert "s3cret" not in repr(credential)
    assert credential.header() and "s3cret" not in credential.header()
