"""The process backend: each instance is a supervised child process group on this machine.

Start command: App Runner runs the user's StartCommand through a shell, and so do we: `/bin/bash -c` (App
Runner's Amazon Linux images have bash as sh, and bash execs a lone command, so the pid we supervise is the app
and its exit status is its own), else `/bin/sh -c`. A shell is acceptable only because the string is the user's
own command for their own app: Runyard never formats a value into it; the port, home and the user's variables
reach the app through an explicit environment (nothing inherited from Runyard's).

Limits, as probed on the reference machine (cgroups v1 hybrid, root, no systemd, no CAP_SYS_RESOURCE): the v1
memory and cpu hierarchies are writable, so each instance gets `runyard/<id>` in both (memory.limit_in_bytes,
cpu.cfs_quota_us); an app past its memory is OOM-killed. Elsewhere (cgroups v2 only, no privileges) RLIMIT_AS
is set instead: lowering a limit needs no capability, but it caps address space, not resident memory, and CPU
is then not limited. `Instance.limits` records which mechanism applied.

Logs: the app's stdout and stderr are the log file itself (one O_APPEND descriptor), not a pipe through Runyard,
so the app keeps running and logging across a Runyard restart; lines arrive as the app flushes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from runyard.runtime.base import (
    Instance,
    InstanceNotFound,
    InstanceSpec,
    InstanceState,
    InstanceStatus,
    InstanceUsage,
    LimitMechanism,
    LogChunk,
    RuntimeBackendError,
    RuntimeKind,
    is_valid_instance_id,
)
from runyard.runtime.logfile import read_lines

_log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PATH = "/usr/local/bin:/usr/bin:/bin"
_CFS_PERIOD_US = 100_000
_MIB = 1024 * 1024
_POLL_S = 0.05
_KILL_WAIT_S = 5.0  # after SIGKILL only uninterruptible sleep can delay an exit
_GONE_KEPT = 1024  # final states remembered for `inspect` after an instance is cleaned up
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True, slots=True)
class _Proc:
    state: str
    pgrp: int
    start_ticks: int  # since boot: with the pid, this identifies one process (pids are recycled)


def _proc(pid: int) -> _Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return _Proc(fields[0], int(fields[2]), int(fields[19]))


def _alive(proc: _Proc | None) -> bool:
    return proc is not None and proc.state not in ("Z", "X")


def _group_alive(pgid: int) -> bool:
    """Whether any live process is in the group (zombies do not count: they hold nothing but a pid)."""
    return any(_alive(p) and p.pgrp == pgid for n in os.listdir("/proc") if n.isdigit() and (p := _proc(int(n))))


def _group_stats(pgid: int) -> list[tuple[int, _Proc]]:
    return [(int(n), p) for n in os.listdir("/proc") if n.isdigit() and (p := _proc(int(n))) and p.pgrp == pgid]


def _usage_fields(pid: int) -> tuple[int, int] | None:
    """(CPU ticks of the process and of its reaped children, resident pages) of a live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return sum(int(value) for value in fields[11:15]), resident  # utime stime cutime cstime


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))  # no SO_REUSEADDR: a port in any use, even TIME_WAIT, is skipped
        except OSError:
            return False
    return True


class _Cgroup:
    """The instance's cgroups v1 directories, `<root>/{memory,cpu}/runyard/<id>`."""

    def __init__(self, root: Path, instance_id: str) -> None:
        self.root = root
        self.memory = root / "memory" / "runyard" / instance_id
        self.cpu = root / "cpu" / "runyard" / instance_id

    def create(self, memory_mb: int, cpu_units: int) -> None:
        # Never mkdir into a cgroups v2 tree that merely has these names: require the v1 controllers' own files.
        if not (self.root / "memory/memory.limit_in_bytes").exists() or not (self.root / "cpu/cpu.shares").exists():
            raise OSError("no cgroups v1 memory and cpu hierarchies")
        for directory in (self.memory, self.cpu):
            directory.parent.mkdir(exist_ok=True)
            directory.mkdir(exist_ok=True)
        limit = str(memory_mb * _MIB)
        (self.memory / "memory.limit_in_bytes").write_text(limit)
        memsw = self.memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # where swap is on, do not let the app swap past its limit either
            memsw.write_text(limit)
        (self.cpu / "cpu.cfs_period_us").write_text(str(_CFS_PERIOD_US))
        (self.cpu / "cpu.cfs_quota_us").write_text(str(max(1000, cpu_units * _CFS_PERIOD_US // 1024)))

    def open_procs(self) -> list[int]:
        return [os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for d in (self.memory, self.cpu)]

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.memory / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def memory_in_use(self) -> tuple[int, int] | None:
        """(bytes in use less reclaimable page cache, limit), as `docker stats` counts a container's memory."""
        try:
            usage = int((self.memory / "memory.usage_in_bytes").read_text())
            limit = int((self.memory / "memory.limit_in_bytes").read_text())
            stat = dict(line.split() for line in (self.memory / "memory.stat").read_text().splitlines())
        except (OSError, ValueError):
            return None
        return max(0, usage - int(stat.get("total_inactive_file", 0))), limit

    def oom_killed(self) -> bool:
        with contextlib.suppress(OSError):
            for line in (self.memory / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        return False

    def remove(self) -> None:
        for directory in (self.memory, self.cpu):
            if directory.exists():
                try:
                    directory.rmdir()
                except OSError as exc:
                    _log.warning("could not remove cgroup %s: %s", directory, exc)


def _enter_limits(cgroup_fds: list[int], address_space: int | None) -> Callable[[], None]:
    """Runs in the child between fork and exec, so the app is limited before it can allocate or fork.
    Syscalls only (no imports, no locks): that keeps a preexec function safe in a threaded parent."""

    def preexec() -> None:
        for fd in cgroup_fds:
            os.write(fd, b"0")  # cgroups v1: "0" moves the writing process
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return preexec


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    """What survives a Runyard restart, one JSON file per instance under the state directory."""

    instance_id: str
    pid: int
    pgid: int
    port: int
    started_at: float
    start_ticks: int
    boot_id: str
    limits: str
    log_path: str

    def instance(self) -> Instance:
        return Instance(
            self.instance_id, LOOPBACK, self.port, self.started_at, LimitMechanism(self.limits), Path(self.log_path)
        )


class ProcessBackend:
    kind = RuntimeKind.PROCESS

    def __init__(
        self,
        state_dir: Path,
        *,
        port_range: tuple[int, int] = (20000, 29999),
        cgroup_root: Path | None = DEFAULT_CGROUP_ROOT,  # None: never try cgroups (rlimits only)
    ) -> None:
        self._dir = state_dir
        self._port_range = port_range
        self._cgroup_root = cgroup_root
        self._shell = "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._gone: dict[str, tuple[InstanceState, Path]] = {}  # final states, for `inspect` after clean-up

    async def start(self, spec: InstanceSpec) -> Instance:
        spec.validate()
        instance_id = spec.instance_id
        if spec.image is not None:
            raise RuntimeBackendError(f"Instance {instance_id} names an image: the process runtime cannot run images")
        if self._record(instance_id) is not None:
            raise RuntimeBackendError(f"Instance {instance_id} already exists")
        if not spec.working_dir.is_dir():
            raise RuntimeBackendError(f"The working directory of instance {instance_id} does not exist")
        self._dir.mkdir(parents=True, exist_ok=True)
        port = self._allocate_port()
        home = self._dir / "home" / instance_id
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": _PATH, "LANG": "C.UTF-8", "HOME": str(home), **spec.env}
        env.update(dict.fromkeys(("PORT", *spec.port_env_names), str(port)))
        cgroup, limits = self._limit(spec)
        cgroup_fds: list[int] = []
        try:
            cgroup_fds = cgroup.open_procs() if cgroup else []
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(spec.log_path, "ab") as log:
                child = subprocess.Popen(
                    [self._shell, "-c", spec.command],
                    cwd=spec.working_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # its own session and process group, so stop reaches all it spawns
                    preexec_fn=_enter_limits(cgroup_fds, None if cgroup else _address_space(spec.memory_mb)),
                )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:  # ValueError: a NUL in the env
            if cgroup is not None:
                cgroup.remove()
            shutil.rmtree(home, ignore_errors=True)
            raise RuntimeBackendError(f"Instance {instance_id} could not start: {exc}") from exc
        finally:
            for fd in cgroup_fds:
                os.close(fd)
        ticks = proc.start_ticks if (proc := _proc(child.pid)) else 0  # readable even after exit: not reaped yet
        # start_new_session: the child leads its own process group, so pgid == pid
        record = _Record(
            instance_id, child.pid, child.pid, port, time.time(), ticks, _boot_id(), limits.value, str(spec.log_path)
        )
        self._children[instance_id] = child
        self._gone.pop(instance_id, None)
        self._save(record)
        _log.info("instance %s started: pid %d, port %d, limits %s", instance_id, child.pid, port, limits.value)
        return record.instance()

    async def stop(self, instance_id: str, *, grace: float) -> None:
        record = self._record(instance_id)
        if record is None:
            return
        self._signal(record, signal.SIGTERM)
        if not await self._wait_gone(record, grace):
            self._signal(record, signal.SIGKILL)
            if not await self._wait_gone(record, _KILL_WAIT_S):
                raise RuntimeBackendError(f"Instance {instance_id} did not exit after SIGKILL")
        self._finish(record)

    async def inspect(self, instance_id: str) -> InstanceState:
        record = self._record(instance_id)
        if record is not None:
            return self._state(record)
        if instance_id in self._gone:
            return self._gone[instance_id][0]
        raise InstanceNotFound(f"No instance {instance_id}")

    async def instances(self) -> list[Instance]:
        for instance_id, child in list(self._children.items()):  # children another backend stopped: reap them
            if child.poll() is not None and self._record(instance_id) is None:
                del self._children[instance_id]
        running: list[Instance] = []
        for record in self._all_records():
            if self._state(record).running:  # ours, or re-adopted from before a restart
                running.append(record.instance())
                continue
            try:  # dead: kill what is left of its group, release its cgroup, forget its record
                await self.stop(record.instance_id, grace=0)
            except RuntimeBackendError as exc:
                _log.warning("%s", exc.message)
        return running

    async def logs(self, instance_id: str, *, offset: int = 0) -> LogChunk:
        record = self._record(instance_id)
        if record is not None:
            path = Path(record.log_path)
        elif instance_id in self._gone:
            path = self._gone[instance_id][1]
        else:
            raise InstanceNotFound(f"No instance {instance_id}")
        return await asyncio.to_thread(read_lines, path, offset)

    async def usage(self, instance_id: str) -> InstanceUsage:
        record = self._record(instance_id)
        if record is None:
            raise InstanceNotFound(f"No instance {instance_id}")
        return await asyncio.to_thread(self._usage, record)

    def _usage(self, record: _Record) -> InstanceUsage:
        """CPU from /proc for every process of the instance (its cgroup's, else its process group's); memory from
        the cgroup where there is one, else the processes' resident set."""
        cgroup = self._cgroup(record)
        pids = set(cgroup.pids()) if cgroup else set()
        if not pids and self._is_ours(record):  # a cgroup holds every descendant; without one, the group does
            pids = {pid for pid, _ in _group_stats(record.pgid)}
        ticks = 0
        resident = 0
        for pid in pids:
            stat = _usage_fields(pid)
            if stat is not None:
                ticks += stat[0]
                resident += stat[1]
        memory = cgroup.memory_in_use() if cgroup else None
        if memory is not None:
            return InstanceUsage(ticks / _CLOCK_TICKS, memory[0], memory[1])
        return InstanceUsage(ticks / _CLOCK_TICKS, resident * _PAGE_SIZE, None)

    def _limit(self, spec: InstanceSpec) -> tuple[_Cgroup | None, LimitMechanism]:
        if self._cgroup_root is not None:
            cgroup = _Cgroup(self._cgroup_root, spec.instance_id)
            try:
                cgroup.create(spec.memory_mb, spec.cpu_units)
                return cgroup, LimitMechanism.CGROUP_V1
            except OSError as exc:
                cgroup.remove()
                _log.debug("cgroups v1 not writable (%s); using RLIMIT_AS", exc)
        return None, LimitMechanism.RLIMIT

    def _cgroup(self, record: _Record) -> _Cgroup | None:
        if record.limits != LimitMechanism.CGROUP_V1 or self._cgroup_root is None:
            return None
        return _Cgroup(self._cgroup_root, record.instance_id)

    def _allocate_port(self) -> int:
        low, high = self._port_range
        taken = {record.port for record in self._all_records()}  # reserved even before their apps listen
        span = high - low + 1
        first = random.randrange(span)
        for step in range(span):
            port = low + (first + step) % span
            if port not in taken and _port_free(port):
                return port
        raise RuntimeBackendError(f"No free port in {low}-{high}")

    def _is_ours(self, record: _Record) -> bool:
        """Whether the recorded process group is still the instance's, not a recycled pid's."""
        if record.boot_id != _boot_id():
            return False
        leader = _proc(record.pid)  # a group id stays taken while any member lives, even after the leader
        return leader is None or leader.start_ticks == record.start_ticks

    def _state(self, record: _Record) -> InstanceState:
        child = self._children.get(record.instance_id)
        if child is None:  # adopted: not our child, so its exit status is not ours to learn
            running = self._is_ours(record) and _alive(_proc(record.pid))
            return InstanceState(InstanceStatus.RUNNING if running else InstanceStatus.EXITED)
        code = child.poll()
        if code is None:
            return InstanceState(InstanceStatus.RUNNING)
        cgroup = self._cgroup(record)
        oom = cgroup is not None and cgroup.oom_killed()
        if code < 0:
            return InstanceState(InstanceStatus.KILLED, signal=-code, oom_killed=oom)
        return InstanceState(InstanceStatus.EXITED, exit_code=code, oom_killed=oom)

    def _signal(self, record: _Record, sig: signal.Signals) -> None:
        if self._is_ours(record):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pgid, sig)
        cgroup = self._cgroup(record)
        for pid in cgroup.pids() if cgroup else []:  # also those that left the group (setsid daemons)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    async def _wait_gone(self, record: _Record, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self._state(record)  # reaps our own child once it exits
            cgroup = self._cgroup(record)
            if not (self._is_ours(record) and _group_alive(record.pgid)) and not (cgroup and cgroup.pids()):
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    def _finish(self, record: _Record) -> None:
        state = self._state(record)
        cgroup = self._cgroup(record)
        if cgroup is not None:
            cgroup.remove()
        (self._dir / f"{record.instance_id}.json").unlink(missing_ok=True)
        shutil.rmtree(self._dir / "home" / record.instance_id, ignore_errors=True)
        self._children.pop(record.instance_id, None)
        self._gone[record.instance_id] = (state, Path(record.log_path))
        if len(self._gone) > _GONE_KEPT:
            del self._gone[next(iter(self._gone))]
        _log.info("instance %s stopped: %s", record.instance_id, state)

    # The state directory is the one source of truth, so every backend on it (before or after a restart) agrees.
    def _record(self, instance_id: str) -> _Record | None:
        return _load(self._dir / f"{instance_id}.json") if is_valid_instance_id(instance_id) else None

    def _all_records(self) -> list[_Record]:
        return [r for p in sorted(self._dir.glob("*.json")) if (r := _load(p))] if self._dir.is_dir() else []

    def _save(self, record: _Record) -> None:
        path = self._dir / f"{record.instance_id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(record)))
        os.replace(temporary, path)  # a reader never sees half a record


def _address_space(memory_mb: int) -> int:
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]  # raising the hard limit would need CAP_SYS_RESOURCE
    wanted = memory_mb * _MIB
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def _load(path: Path) -> _Record | None:
    try:
        return _Record(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        _log.warning("ignoring unreadable instance record %s: %s", path, exc)
        return None
