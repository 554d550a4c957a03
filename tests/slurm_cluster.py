"""A real one-node Slurm cluster for the tests: this machine as its only node.

:func:`install_reason` installs Debian's ``slurm-wlm`` and ``munge`` when they are missing and
apt and root are available (with a ``policy-rc.d`` that keeps the packages' init scripts from
starting anything, and stopping any daemon the install started anyway); it returns why a
cluster cannot be had here, or None. :class:`SlurmCluster` writes a munge key, ``slurm.conf``
and ``cgroup.conf`` into a directory of its own (free ports, its own munge socket, state, spool
and log folders), starts ``munged``, ``slurmctld`` and ``slurmd`` in the foreground as child
processes, waits until ``sinfo`` shows the node idle, and at :meth:`SlurmCluster.stop` cancels
its jobs and stops exactly the processes it started, by process id. Nothing else on the machine
(a system Slurm or munge, if any) is used or touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: The commands the cluster needs: daemons, and the client commands submitit calls.
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol", "srun")
#: Debian packages holding them.
PACKAGES = ("slurm-wlm", "munge")
#: Where Debian installs the daemons (not always on a non-root PATH).
_SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
#: The partition the cluster defines (not the default name ``debug``, so that an option that
#: does not reach sbatch is noticed).
PARTITION = "dropkit"


def which(name: str) -> str | None:
    return shutil.which(name, path=_SBIN)


def missing_commands() -> list[str]:
    return [name for name in DAEMONS + CLIENTS if which(name) is None]


def _daemon_pids(*names: str) -> set[int]:
    """Process ids of every running process named in ``names`` (default: munged, slurmctld,
    slurmd, slurmdbd, slurmstepd), read from Linux /proc."""
    names = names or DAEMONS + ("slurmdbd", "slurmstepd")
    found = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in names:
                found.add(int(comm.parent.name))
        except (OSError, ValueError):
            continue
    return found


def install_reason() -> str | None:
    """Install ``slurm-wlm`` and ``munge`` if a command is missing; None when the cluster can be
    started, else the reason it cannot (not root, no apt-get, the install failed)."""
    missing = missing_commands()
    if not missing:
        return None
    if os.geteuid() != 0:
        return (f"Slurm commands {missing} are missing and installing Debian's {' and '.join(PACKAGES)} "
                "needs root")
    if shutil.which("apt-get") is None:
        return f"Slurm commands {missing} are missing and there is no apt-get to install {PACKAGES}"
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:  # init scripts exit 101 ("action not allowed"): the install starts no daemon
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    before = _daemon_pids()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends",
               "-o", "DPkg::Lock::Timeout=300", *PACKAGES]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:  # stale package lists: update once and retry
            subprocess.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"], env=env,
                           capture_output=True)
            done = subprocess.run(command, env=env, capture_output=True, text=True)
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
        for pid in _daemon_pids() - before:  # started by a package script despite policy-rc.d
            _stop(pid)
    if done.returncode != 0:
        return f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}"
    missing = missing_commands()
    return f"after installing {PACKAGES}, still missing {missing}" if missing else None


def _stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM ``pid``, then SIGKILL after ``timeout`` seconds; reaps it if it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child: poll its existence
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_line(hostname: str) -> str:
    """``NodeName=... CPUs=... RealMemory=...`` of this machine as slurmd itself detects it
    (``slurmd -C``), with the node reached on the loopback address."""
    shown = subprocess.run([which("slurmd"), "-C"], capture_output=True, text=True)
    line = next((line for line in shown.stdout.splitlines() if line.startswith("NodeName=")), None)
    if line is None:  # what slurmd would detect: every CPU, the memory in MiB
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        line = f"NodeName={hostname} CPUs={os.cpu_count()} RealMemory={memory}"
    fields = dict(item.split("=", 1) for item in line.split())
    fields["NodeName"] = hostname
    return " ".join(f"{k}={v}" for k, v in fields.items()) + " NodeAddr=127.0.0.1 State=UNKNOWN"


class SlurmCluster:
    """A one-node Slurm cluster in ``directory`` (see the module docstring).

    Attributes:
        conf: the ``slurm.conf`` to point ``SLURM_CONF`` at (clients and jobs read it).
        env: ``os.environ`` with ``SLURM_CONF`` set.
        pids: name -> process id of each daemon started.
        cpus: the node's CPU count.
    """

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.conf = self.dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: dict[str, int] = {}
        self.hostname = socket.gethostname().split(".")[0]
        self.cpus = 0
        self._logs: list = []
        self._steps_before: set[int] = set()

    # ----------------------------------------------------------------- configuration

    def write_config(self) -> None:
        for name in ("state", "spool", "log", "munge"):
            (self.dir / name).mkdir(parents=True, exist_ok=True)
        (self.dir / "munge").chmod(0o700)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        node = _node_line(self.hostname)
        self.cpus = int(dict(item.split("=", 1) for item in node.split())["CPUs"])
        d = self.dir
        self.conf.write_text("\n".join([
            "ClusterName=dropkit-test",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={d / 'munge' / 'munge.socket'}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",  # memory is not a consumable: jobs share the node
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            node,
            f"PartitionName={PARTITION} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        (self.dir / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")

    # ----------------------------------------------------------------- processes

    def _start(self, name: str, *arguments: str) -> None:
        log = open(self.dir / "log" / f"{name}.out", "ab")
        self._logs.append(log)
        process = subprocess.Popen([which(name), *arguments], env=self.env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pids[name] = process.pid

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, pid in self.pids.items():
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        raise RuntimeError(f"{name} exited while waiting for {what}\n{self.log_tail()}")
                except ChildProcessError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tail()}")
            time.sleep(0.2)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run([which(command[0]), *command[1:]], env=self.env, capture_output=True,
                              text=True, check=check, timeout=60)

    def node_state(self) -> str:
        shown = self.run("sinfo", "--noheader", "--nodes", self.hostname, "--format=%T", check=False)
        return shown.stdout.strip() if shown.returncode == 0 else ""

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        """Write the configuration, start the daemons, return once the node is idle; on any
        failure, stop what was started and raise with the daemons' log tails."""
        self._steps_before = _daemon_pids("slurmstepd")
        try:
            self.write_config()
            socket_path = self.dir / "munge" / "munge.socket"
            self._start("munged", "--foreground", "--force", f"--key-file={self.dir / 'munge' / 'munge.key'}",
                        f"--socket={socket_path}", f"--pid-file={self.dir / 'munge' / 'munged.pid'}",
                        f"--seed-file={self.dir / 'munge' / 'munged.seed'}",
                        f"--log-file={self.dir / 'log' / 'munged.log'}")
            self._wait("munged's socket", socket_path.exists, timeout)
            self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
            self._wait("slurmctld to answer", lambda: self.run("scontrol", "ping", check=False).returncode == 0,
                       timeout)
            self._start("slurmd", "-D", "-f", str(self.conf), "-N", self.hostname)
            self._wait("the node to be idle", lambda: self.node_state() == "idle", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def cancel_all(self) -> None:
        """Cancel every job of this cluster and wait (up to 30 s) until none is left running."""
        if "slurmctld" not in self.pids:
            return
        self.run("scancel", "--user", str(os.getuid()), check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shown = self.run("squeue", "--noheader", "--format=%i %T", check=False)
            if shown.returncode != 0 or not any(
                    state in line for line in shown.stdout.splitlines()
                    for state in ("RUNNING", "PENDING", "COMPLETING", "CONFIGURING")):
                return
            time.sleep(0.5)

    def stop(self) -> None:
        """Cancel the jobs, then stop slurmd, slurmctld and munged (in that order) by pid."""
        try:
            self.cancel_all()
        finally:
            for name in ("slurmd", "slurmctld", "munged"):
                if name in self.pids:
                    _stop(self.pids.pop(name))
            # the job step daemons of cancelled jobs end by themselves moments later
            deadline = time.monotonic() + 15
            while _daemon_pids("slurmstepd") - self._steps_before and time.monotonic() < deadline:
                time.sleep(0.2)
            for log in self._logs:
                log.close()
            self._logs = []

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in sorted((self.dir / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
