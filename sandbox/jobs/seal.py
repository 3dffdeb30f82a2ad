"""The OS seal around a job process: what it may still do once its Python has been escaped.

A job child applies these layers to itself, in this order, before it reads a line of job code:
resource limits, an unprivileged user of its own (where the runner is root), no new
privileges, a Landlock domain with no file access at all, and a seccomp filter that allows only
the few system calls a running job makes. The network is left once, by the zygote, for all its
children (where the kernel lets it). Each layer is meant to hold on its own when the layers
before it have been bypassed, and tests show each one alone, as root and as another user.

The child needs no file once sealed: job code arrives over an inherited socket, the modules it
may use are imported before the seal, and data reaches it only as checked aggregates over the
same socket. So the filesystem can be shut entirely, where DuckDB in the same process could not.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from dataclasses import dataclass, field

import landlock

try:
    import pyseccomp
except (RuntimeError, OSError):  # libseccomp is not installed: the layer reports itself absent
    pyseccomp = None

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
SIGKILL = 9
# Unprivileged users of their own, one per job slot, that own no file on the host.
JOB_UID_BASE = 59_000
JOB_UIDS = 1_000

LAYERS = ("network_namespace", "rlimits", "user", "no_new_privs", "landlock", "seccomp")

# The layers a job cannot run without, root or not. A user of its own needs root and a network
# namespace needs root or user namespaces; where they are missing, seccomp shuts what they
# would have (other processes, every socket), so they are reported but not required.
REQUIRED = ("rlimits", "no_new_privs", "landlock", "seccomp")

# Every system call a sealed job makes once its code is running: memory, the socket it holds,
# its own signals and clocks, and the way out. Everything else fails with EPERM, so no call
# reaches another process (kill, prlimit, setpriority, scheduler and affinity queries,
# ptrace, process_vm_*, pidfd_*), the host's files or their metadata (open, stat, statx,
# readlink, access, getdents), the network, the kernel's larger surfaces, or a wait on
# anything but the runner (select, poll, sleep).
ALLOWED_CALLS = (
    "read", "write", "readv", "writev", "recvfrom", "sendto", "close", "fstat", "lseek",
    "brk", "munmap", "mremap", "madvise", "futex", "getrandom",
    "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "exit", "exit_group", "restart_syscall",
)  # fmt: skip
PROT_EXEC = 0x4
# CLOCK_REALTIME … CLOCK_BOOTTIME: the process's own and the system's clocks. A negative clock
# id names another process's CPU clock, which would show how busy another job is.
OWN_CLOCKS = range(8)


@dataclass(frozen=True)
class SealLimits:
    """Resource limits for one job process."""

    cpu_s: int = 30
    memory_bytes: int = 512 * 1024 * 1024
    open_files: int = 16
    # Counted per user: with a user of its own the job may start no process at all.
    processes: int = 0
    file_bytes: int = 0


@dataclass(frozen=True)
class SealReport:
    """Which layers a sealed process holds; the ones it needs are checked by `sufficient`."""

    layers: dict[str, bool] = field(default_factory=dict)

    @property
    def sufficient(self) -> bool:
        """Every required layer holds."""
        return all(self.layers.get(name) is True for name in REQUIRED)


class SealFailed(Exception):
    """A layer the job cannot run without could not be applied."""


def leave_network() -> bool:
    """Enter an empty network namespace (root, or an unprivileged user namespace)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return any(libc.unshare(flags) == 0 for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET))


def in_own_network() -> bool:
    """Whether this process has no network interface but loopback, which is what leaving gave."""
    try:
        return {name for _, name in __import__("socket").if_nameindex()} <= {"lo"}
    except OSError:
        return False


def seal(
    limits: SealLimits,
    slot: int,
    *,
    layers: frozenset[str] = frozenset(LAYERS),
    network_left: bool = False,
) -> SealReport:
    """Apply `layers` to this process; raise SealFailed unless what holds is sufficient.

    `layers` is every layer in production; tests pass one at a time to show it holds alone.
    """
    held = {"network_namespace": network_left and "network_namespace" in layers}
    libc = ctypes.CDLL(None, use_errno=True)
    # Dies with its parent, so no job outlives the runner that would time it out.
    libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    held["rlimits"] = "rlimits" in layers and _limit(limits)
    held["user"] = "user" in layers and _become_job_user(slot)
    held["no_new_privs"] = "no_new_privs" in layers and (
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    )
    held["landlock"] = "landlock" in layers and _shut_files()
    held["seccomp"] = "seccomp" in layers and _filter_calls()
    report = SealReport(held)
    if layers == frozenset(LAYERS) and not report.sufficient:
        raise SealFailed(f"the job seal is incomplete: {held}")
    return report


JOB_NICENESS = 19


def _limit(limits: SealLimits) -> bool:
    for kind, value in (
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
    ):
        # CPU: SIGXCPU at the soft limit, SIGKILL a second later if the job catches it.
        hard = value + 1 if kind == resource.RLIMIT_CPU else value
        resource.setrlimit(kind, (value, hard))
    # The lowest CPU priority: a busy job barely slows the queries beside it, so its load
    # carries little to a developer timing its own queries (a red-team round read bits so).
    os.setpriority(os.PRIO_PROCESS, 0, JOB_NICENESS)
    return True


def _become_job_user(slot: int) -> bool:
    """Only root can change users; other runners already run as an unprivileged user."""
    if os.geteuid() != 0:
        return False
    uid = JOB_UID_BASE + slot % JOB_UIDS
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    return os.getuid() == uid and os.geteuid() == uid


def _shut_files() -> bool:
    """A Landlock domain that handles every file right and allows none: no path opens."""
    # The landlock package reads errno after each call even when the call succeeded, so a
    # stale errno (an unshare refused earlier, as it is for a user without privilege) would
    # make it report failure: start it from zero.
    ctypes.set_errno(0)
    try:
        ruleset = landlock.Ruleset(landlock.FSAccess.all())
        ruleset.apply()
    except Exception:  # noqa: BLE001 - any failure means no Landlock, which the report says
        return False
    os.close(ruleset._fd)  # noqa: SLF001 - the package keeps the ruleset fd open after applying
    return True


def _filter_calls() -> bool:
    """Allow ALLOWED_CALLS, memory that is never executable, and the process's own clocks."""
    if pyseccomp is None:
        return False
    try:
        calls = pyseccomp.SyscallFilter(defaction=pyseccomp.ERRNO(errno.EPERM))
        for name in ALLOWED_CALLS:
            calls.add_rule(pyseccomp.ALLOW, name)
        for name in ("mmap", "mprotect"):
            calls.add_rule(
                pyseccomp.ALLOW, name, pyseccomp.Arg(2, pyseccomp.MASKED_EQ, PROT_EXEC, 0)
            )
        for clock in OWN_CLOCKS:
            for name in ("clock_gettime", "clock_getres"):
                calls.add_rule(
                    pyseccomp.ALLOW, name, pyseccomp.Arg(0, pyseccomp.MASKED_EQ, 0xFFFFFFFF, clock)
                )
        calls.load()
    except (OSError, RuntimeError, ValueError):
        return False
    return True
