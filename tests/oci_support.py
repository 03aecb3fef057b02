"""Container images for tests, made offline: a busybox-static rootfs imported with `podman import`.

No registry is reachable from here, so test images are built from the host's static busybox (Debian's
busybox-static, installed by `make deps`) plus the files a test needs, and tagged by a hash of their content so
a second session finds them already there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping

BUSYBOX = "/bin/busybox"


def podman_usable() -> str | None:
    """Why podman cannot run containers here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (`make deps` installs it)"
    if not os.access(BUSYBOX, os.X_OK):
        return f"{BUSYBOX} is missing (`make deps` installs busybox-static)"
    return None


def busybox_image(
    name: str,
    files: Mapping[str, str],
    *,
    env: Mapping[str, str] | None = None,
    cmd: list[str] | None = None,
    workdir: str = "/",
    podman_env: Mapping[str, str] | None = None,
) -> str:
    """Import (once) an image of busybox with every applet on /bin, plus `files` (path -> text; executable
    when it starts with #!), and return its reference `localhost/<name>:<content hash>`."""
    changes = [f"ENV {key}={value}" for key, value in {"PATH": "/bin", **(env or {})}.items()]
    changes.append(f"WORKDIR {workdir}")
    if cmd is not None:
        changes.append("CMD " + json.dumps(cmd))
    digest = hashlib.sha256(repr((sorted(files.items()), changes, _busybox_id())).encode()).hexdigest()[:16]
    reference = f"localhost/{name}:{digest}"
    run_env = dict(podman_env or os.environ)
    if subprocess.run(["podman", "image", "exists", reference], env=run_env, check=False).returncode == 0:
        return reference
    command = ["podman", "import"]
    for change in changes:
        command += ["--change", change]
    subprocess.run(
        [*command, "-", reference], input=_rootfs(files), env=run_env, check=True, capture_output=True, timeout=120
    )
    return reference


def _busybox_id() -> tuple[int, int]:
    stat = os.stat(BUSYBOX)
    return stat.st_size, int(stat.st_mtime)


def _rootfs(files: Mapping[str, str]) -> bytes:
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "etc", "root"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in applets:
            if applet == "busybox":  # `--list` names busybox itself
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for name, text in {"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", **files}.items():
            data = text.encode()
            parents = name.strip("/").split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                path = "/".join(parents[:depth])
                if path not in tar.getnames():
                    info = tarfile.TarInfo(path)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name.strip("/"))
            info.size = len(data)
            info.mode = 0o755 if text.startswith("#!") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
