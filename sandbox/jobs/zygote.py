"""The parent of job processes: it holds no secret and no data, and starts each job afresh.

Started by the runner as `python -I -m sandbox.jobs.zygote FD` with an empty environment, it
leaves the network for good, checks which seal layers this kernel grants by sealing a probe
child, and then serves the control socket FD (SOCK_SEQPACKET, JSON, descriptors attached):

    runner → {"op": "start", "job", "slot", "limits", "wall_s"} + the job's socket
    zygote → {"op": "started", "job", "pid"}
    runner → {"op": "kill", "job"}
    zygote → {"op": "exited", "job", "exit_code" | "signal", "cpu_ms", "killed": reason | null}

Each job process is a fork that at once executes a fresh interpreter (`sandbox.jobs.child`),
given only its socket, its slot and its limits: nothing of this process's bookkeeping (other
jobs, their ids, their sockets) survives into it, not even in freed memory. The zygote kills a
child at its wall-clock deadline even if the runner has gone quiet, and reaps every child with
its CPU time, which the runner meters.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox import interrupts
from sandbox.jobs.seal import LAYERS, SealFailed, SealLimits, leave_network, seal

MAX_CONTROL_BYTES = 64 * 1024
TICK_S = 0.02
PROBE_SLOT = 0
EXIT_INTERNAL = 70

# The interpreter a job runs in (argv; executed as SELF, this very interpreter); its last two
# arguments are the socket's fd and the start.
CHILD_COMMAND = (sys.executable, "-I", "-m", "sandbox.jobs.child")
SELF = "/proc/self/exe"


@dataclass
class Child:
    job: str
    deadline: float
    killed: str | None = None


def main() -> None:
    # The runner stops this process (and it, its jobs); its jobs inherit SIGINT ignored.
    interrupts.ignore()
    control = socket.socket(fileno=int(sys.argv[1]))
    network_left = leave_network()
    serve(control, CHILD_COMMAND, probe(network_left), network_left=network_left)


def probe(network_left: bool) -> dict[str, bool]:
    """Seal a throwaway child with every layer and report which ones held."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            layers = seal(SealLimits(), PROBE_SLOT, network_left=network_left).layers
        except SealFailed:
            layers = {}
        os.write(write_end, json.dumps(layers).encode())
        os._exit(0)
    os.close(write_end)
    reported = os.read(read_end, 4096)
    os.close(read_end)
    os.waitpid(pid, 0)
    layers = json.loads(reported or b"{}")
    return {name: bool(layers.get(name)) for name in LAYERS}


def serve(
    control: socket.socket,
    child_command: Sequence[str],
    layers: dict[str, bool],
    *,
    network_left: bool,
) -> None:
    children: dict[int, Child] = {}
    # A child's end wakes the loop at once, so it is reaped and reported without a tick's wait.
    ended_read, ended_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(ended_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _tell(control, {"op": "ready", "layers": layers})
    while True:
        readable, _, _ = select.select([control, ended_read], [], [], TICK_S)
        if ended_read in readable:
            _drain(ended_read)
        if control in readable and not _handle(control, children, child_command, network_left):
            break
        _reap(control, children)
        _enforce_deadlines(children)
    for pid in children:
        _kill(pid)


def _handle(
    control: socket.socket,
    children: dict[int, Child],
    child_command: Sequence[str],
    network_left: bool,
) -> bool:
    """One control message; False once the runner has gone."""
    try:
        data, fds, _, _ = socket.recv_fds(control, MAX_CONTROL_BYTES, 4)
    except OSError:
        return False
    if not data:
        return False
    message = json.loads(data)
    if message["op"] == "start":
        channel = fds[0]
        # What the job's interpreter is told: never its job id, nothing of any other job.
        start = {"slot": message["slot"], "limits": message["limits"],
                 "network_left": network_left}  # fmt: skip
        pid = os.fork()
        if pid == 0:
            _become_job(channel, child_command, start)
        os.close(channel)
        deadline = time.monotonic() + float(message["wall_s"])
        children[pid] = Child(message["job"], deadline)
        _tell(control, {"op": "started", "job": message["job"], "pid": pid})
    elif message["op"] == "kill":
        for pid, held in children.items():
            if held.job == message["job"]:
                held.killed = held.killed or "request"
                _kill(pid)
    for fd in fds[1:]:
        os.close(fd)
    return True


def _become_job(channel: int, child_command: Sequence[str], start: dict[str, Any]) -> None:
    """In the forked child: replace this process's image with a fresh job interpreter."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.set_inheritable(channel, True)
        # The zygote's own interpreter, by its open file: the path to it may pass through a
        # directory a user namespace cannot search (a pyenv under /root, say).
        os.execv(SELF, [*child_command, str(channel), json.dumps(start)])
    finally:
        os._exit(EXIT_INTERNAL)


def _reap(control: socket.socket, children: dict[int, Child]) -> None:
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        held = children.pop(pid, None)
        if held is None:
            continue
        ended: dict[str, Any] = {"exit_code": None, "signal": None}
        if os.WIFSIGNALED(status):
            ended["signal"] = signal.Signals(os.WTERMSIG(status)).name
        else:
            ended["exit_code"] = os.WEXITSTATUS(status)
        cpu_ms = round((usage.ru_utime + usage.ru_stime) * 1000)
        _tell(control, {"op": "exited", "job": held.job, "cpu_ms": cpu_ms,
                        "killed": held.killed, **ended})  # fmt: skip


def _enforce_deadlines(children: dict[int, Child]) -> None:
    now = time.monotonic()
    for pid, held in children.items():
        if held.killed is None and now >= held.deadline:
            held.killed = "deadline"
            _kill(pid)


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _tell(control: socket.socket, message: dict[str, Any]) -> None:
    # If the runner has gone, the loop ends at its next read.
    with contextlib.suppress(OSError):
        control.send(json.dumps(message).encode())


if __name__ == "__main__":
    main()
