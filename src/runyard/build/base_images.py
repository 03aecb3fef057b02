"""Base images for code services on the OCI runtime, made offline from this host's own interpreters.

A root filesystem holds the interpreter at the path it has on the host (`/usr/bin/python3.11` with
`/usr/lib/python3.11`, or `/usr/bin/node` with npm), the shared libraries `ldd` lists for it (and for Python's
extension modules), busybox for `/bin/sh` and the usual tools, CA certificates and minimal passwd/group files. It
is imported into the engine with `podman import` (about 2 s). Because the interpreter lives where it lives on the
host, an artifact built on the host (its virtual environment links to that interpreter) runs unchanged inside.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from runyard.errors import RunyardError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")
# What apps never import, and the interpreter's own site-packages (a service's packages are in its venv).
_PYTHON_SKIPPED = {"test", "idlelib", "tkinter", "turtledemo", "__pycache__", "site-packages", "dist-packages"}
_MERGED_USR = ("bin", "lib", "lib64", "sbin", "libx32", "lib32")
_ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "etc/nsswitch.conf": "hosts: files dns\n",
}
Log = Callable[[str], None]


class BootstrapFailed(RunyardError):
    """A base image could not be made from this host."""


def python_paths(executable: Path) -> list[Path]:
    """The interpreter (as the host names it and its real file) and its standard library directory."""
    probe = "import sysconfig; print(sysconfig.get_paths()['stdlib'])"
    try:
        stdlib = subprocess.run(
            [str(executable), "-c", probe], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        raise BootstrapFailed(f"{executable} does not run: {error}") from None
    paths = [executable, executable.resolve(), Path(stdlib)]
    return [path for path in dict.fromkeys(paths) if path.exists()]


def node_paths(executable: Path) -> list[Path]:
    real = executable.resolve()
    paths = [executable, real]
    npm = Path("/usr/lib/node_modules/npm")
    if npm.is_dir():
        paths += [npm, Path("/usr/bin/npm"), Path("/usr/bin/npx")]
    return [path for path in dict.fromkeys(paths) if path.exists() or path.is_symlink()]


class RootFs:
    def __init__(self, root: Path) -> None:
        self.root = root
        for name in _MERGED_USR:  # the host's merged-/usr links, so /lib/... paths land where they do on the host
            host = Path("/") / name
            if host.is_symlink():
                (root / os.readlink(host)).mkdir(parents=True, exist_ok=True)
                (root / name).symlink_to(os.readlink(host))
        for directory in ("usr/bin", "usr/lib", "etc/ssl", "tmp", "root", "app"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        (root / "tmp").chmod(0o1777)
        for name, text in _ETC_FILES.items():
            (root / name).write_text(text)

    def target(self, path: Path) -> Path:
        return self.root / str(path).lstrip("/")

    def copy(self, path: Path, *, skip: Iterable[str] = ()) -> None:
        """Copy a host file, symlink or directory tree to the same path inside."""
        target = self.target(path)
        if target.exists() or target.is_symlink():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_dir():
            skipped = set(skip)
            shutil.copytree(path, target, symlinks=True, ignore=lambda _, names: [n for n in names if n in skipped])
        else:
            shutil.copy2(path, target)

    def add_libraries(self, binaries: Iterable[Path]) -> None:
        """The shared libraries `ldd` lists for each ELF binary (copied as files at the path ldd names)."""
        for binary in binaries:
            for library in shared_libraries(binary):
                target = self.target(library)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(library.resolve(), target)

    def add_busybox(self) -> None:
        busybox = next((Path(p) for p in BUSYBOX_CANDIDATES if Path(p).is_file()), None)
        if busybox is None:
            raise BootstrapFailed("busybox is not installed (Debian's busybox-static: `make deps`).")
        self.copy(busybox.resolve())
        inside = Path("/usr/bin/busybox") if busybox.resolve() == Path("/usr/bin/busybox") else busybox
        applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
        for applet in applets.split():
            if applet.endswith("/busybox"):
                continue  # `--list` names busybox itself
            target = self.target(Path("/") / applet)
            if target.exists() or target.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(str(inside))

    def add_certificates(self) -> None:
        for path in (Path("/etc/ssl/certs"), Path("/usr/share/ca-certificates")):
            if path.is_dir():
                self.copy(path)

    def tar(self, destination: Path) -> None:
        with tarfile.open(destination, "w") as tar:
            tar.add(str(self.root), arcname=".", recursive=True)


def shared_libraries(binary: Path) -> list[Path]:
    try:
        output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [Path(match.group(1)) for match in map(_LDD_PATH.search, output.splitlines()) if match]


def python_rootfs(root: Path, executable: Path) -> RootFs:
    fs = RootFs(root)
    fs.add_busybox()
    paths = python_paths(executable)
    for path in paths:
        fs.copy(path, skip=_PYTHON_SKIPPED)
    for alias in ("python3", "python"):  # on the default PATH too, for start commands that name `python3`
        link = fs.target(Path("/usr/bin") / alias)
        if not (link.exists() or link.is_symlink()):
            link.symlink_to(str(executable.resolve()))
    stdlib = [p for p in paths if p.is_dir()]
    extensions = [so for directory in stdlib for so in (directory / "lib-dynload").glob("*.so")]
    fs.add_libraries([executable.resolve(), *extensions])
    fs.add_certificates()
    return fs


def node_rootfs(root: Path, executable: Path) -> RootFs:
    fs = RootFs(root)
    fs.add_busybox()
    for path in node_paths(executable):
        fs.copy(path)
    fs.add_libraries([executable.resolve()])
    fs.add_certificates()
    return fs


def import_image(rootfs: RootFs, tag: str, env: Mapping[str, str], log: Log) -> None:
    """`podman import` of the root filesystem, tagged as the configured base image."""
    if shutil.which("podman") is None:
        raise BootstrapFailed("podman is not installed (`make deps`).")
    with tempfile.TemporaryDirectory(prefix="runyard-base-") as scratch:
        archive = Path(scratch) / "rootfs.tar"
        rootfs.tar(archive)
        command = [
            "podman",
            "import",
            "--change",
            'CMD ["/bin/sh"]',
            "--change",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8",
            str(archive),
            tag,
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=dict(env), timeout=600)
    if done.returncode != 0:
        raise BootstrapFailed(f"podman import failed: {done.stderr.strip()[-500:]}")
    log(f"{tag}: imported ({done.stdout.strip()[:19]})")


def bootstrap(
    images: Mapping[str, tuple[str, Path | None]], scratch: Path, env: Mapping[str, str], log: Log
) -> list[str]:
    """Make each base image (language -> (tag, host interpreter)); returns the tags made."""
    made: list[str] = []
    for language, (tag, executable) in images.items():
        if executable is None:
            log(f"{tag}: skipped (no {language} interpreter on this host)")
            continue
        root = scratch / f"{language}-rootfs"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        try:
            fs = python_rootfs(root, executable) if language == "python" else node_rootfs(root, executable)
            log(f"{tag}: root filesystem from {executable} assembled")
            import_image(fs, tag, env, log)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        made.append(tag)
    return made
