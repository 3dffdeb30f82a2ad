"""The warm parent of job processes: it imports once, holds no secret and no data, and forks.

Started by the runner as `python -I -m sandbox.jobs.zygote FD` with an empty environment, it
leaves the network for good, checks which seal layers this kernel grants by sealing a probe
child, and then serves the control socket FD (SOCK_SEQPACKET, JSON, descriptors attached):

    runner → {"op": "start", "job", "slot", "limits", "wall_s"} + the job's socket
    zygote → {"op": "started", "job", "pid"}
    runner → {"op": "kill", "job"}
    zygote → {"op": "exited", "job", "exit_code" | "signal", "cpu_ms", "killed": reason | null}

It kills a child at its wall-clock deadline even if the runner has gone quiet, and reaps every
child with its CPU time, which the runner meters.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.jobs import child
from sandbox.jobs.seal import LAYERS, SealFailed, SealLimits, leave_network, seal

MAX_CONTROL_BYTES = 64 * 1024
TICK_S = 0.02
PROBE_SLOT = 0
EXIT_INTERNAL = 70

ChildMain = Callable[[socket.socket, dict[str, Any]], int]


@dataclass
class Child:
    job: str
    deadline: float
    killed: str | None = None


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    network_left = leave_network()
    devnull = os.open(os.devnull, os.O_RDWR)

    def job_main(channel: socket.socket, start: dict[str, Any]) -> int:
        return child.run(channel, start, network_left=network_left, devnull=devnull)

    serve(control, job_main, probe(network_left))


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


def serve(control: socket.socket, job_main: ChildMain, layers: dict[str, bool]) -> None:
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
        if control in readable and not _handle(control, children, job_main):
            break
        _reap(control, children)
        _enforce_deadlines(children)
    for pid in children:
        _kill(pid)


def _handle(control: socket.socket, children: dict[int, Child], job_main: ChildMain) -> bool:
    """One control message; False once the runner has gone."""
    try:
        data, fds, _, _ = socket.recv_fds(control, MAX_CONTROL_BYTES, 4)
    except OSError:
        return False
    if not data:
        return False
    message = json.loads(data)
    if message["op"] == "start":
        channel = socket.socket(fileno=fds[0])
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = EXIT_INTERNAL
            try:
                code = job_main(channel, message)
            finally:
                os._exit(code)
        channel.close()
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
