"""The OS seal around a job process: what it may still do once its Python has been escaped.

A job child applies these layers to itself, in this order, before it reads a line of job code:
resource limits, an unprivileged user of its own, no new privileges, a Landlock domain with no
file access at all, and a seccomp filter denying every system call a job has no use for. The
network is left once, by the warm parent, for all its children. Each layer is meant to hold on
its own when the layers before it have been bypassed, and tests show each one alone.

The child needs no file: job code arrives over an inherited socket, the modules it may use
are imported before the fork, and data reaches it only as checked aggregates over the same
socket. So the filesystem can be shut entirely, where DuckDB in the same process could not.
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

# Calls that reach outside the process or change what it is. Everything else a Python
# interpreter needs (read/write on the fds it holds, memory, clocks, signals to itself) stays.
DENIED_CALLS = (
    # new programs and new processes or threads
    "execve", "execveat", "fork", "vfork", "clone", "clone3",
    # the network, and any socket besides the one inherited
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    # files: a job opens none, creates none and changes none
    "open", "openat", "openat2", "creat", "open_by_handle_at", "name_to_handle_at",
    "mknod", "mknodat", "symlink", "symlinkat", "link", "linkat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "truncate",
    "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
    "inotify_init", "inotify_init1", "fanotify_init", "memfd_create", "memfd_secret",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kill", "tkill", "tgkill",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    "kcmp", "move_pages", "migrate_pages",
    # identity and privilege
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
    "setfsuid", "setfsgid", "capset", "personality",
    # the kernel's larger surfaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf", "perf_event_open",
    "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "acct", "swapon", "swapoff", "reboot", "sethostname", "setdomainname",
    "iopl", "ioperm", "syslog", "quotactl", "fsopen", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr",
)  # fmt: skip


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
        """Limits and no-new-privs always; the network and files each shut by some layer."""
        held = {name for name, on in self.layers.items() if on}
        return (
            {"rlimits", "no_new_privs"} <= held
            and bool(held & {"network_namespace", "seccomp"})
            and bool(held & {"landlock", "seccomp"})
        )


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
    try:
        ruleset = landlock.Ruleset(landlock.FSAccess.all())
        ruleset.apply()
    except (landlock.LandlockError, OSError, AttributeError):
        return False
    os.close(ruleset._fd)  # noqa: SLF001 - the package keeps the ruleset fd open after applying
    return True


def _filter_calls() -> bool:
    if pyseccomp is None:
        return False
    try:
        calls = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
        for name in DENIED_CALLS:
            try:
                calls.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
            except (ValueError, RuntimeError, OSError):
                continue  # a call this architecture does not have
        calls.load()
    except (OSError, RuntimeError, ValueError):
        return False
    return True
