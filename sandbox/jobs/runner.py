"""The runner: starts the zygote, hands it jobs, and talks to each sealed job process.

`JobRunner.run` drives one job from code to published tables. A job's `sql()` calls come back
here and are answered by the `answer` callable the caller supplies (the gateway's own query
path, so a job is authorised, guarded, thresholded and metered exactly as a query is).
Whatever the job process sends is parsed as untrusted data.
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from sandbox import interrupts
from sandbox.errors import SandboxError
from sandbox.jobs import child, wire
from sandbox.jobs.checks import RULES as CHECK_RULES
from sandbox.jobs.failures import reported
from sandbox.jobs.seal import JOB_UIDS, SealLimits, SealReport

START_TIMEOUT_S = 30.0
POLL_S = 0.05
# How long an ended job's process has to be reaped before the runner stops waiting.
EXIT_GRACE_S = 5.0
ZYGOTE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class JobLimits:
    """What one job may use; the gateway's settings and obligations fill it in."""

    wall_s: float = 60.0
    cpu_s: int = 30
    memory_bytes: int = 512 * 1024 * 1024
    max_queries: int = 100
    max_tables: int = 20
    max_output_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """A released answer to a job's `sql()`: what the job sees, and for each row the units
    behind it and whether it failed the dominance rules (its sums and means withheld)."""

    columns: list[str]
    rows: list[list]
    units: list[int]
    dominated: list[bool]


class AnswerRefused(SandboxError):
    """`answer` refused or failed a job's query; `code` is the stable code the job is told."""

    def __init__(self, code: str) -> None:
        super().__init__("the query was refused")
        self.code = code


@dataclass(frozen=True)
class Published:
    """A table a job offered for release, as sent, before the disclosure gate."""

    name: str
    columns: list
    rows: list


@dataclass
class JobRun:
    """How a job ended, what it offered, and what the enclave released to it on the way."""

    status: str  # succeeded | failed | timeout | cancelled | rejected | lost (its process died)
    error: str | None = None
    violations: list[dict] = field(default_factory=list)
    # A failure of the job's own code: the exception's kind and its line (`failures.py`).
    failure: dict = field(default_factory=dict)
    tables: list[Published] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    cpu_ms: int = 0


class JobsUnavailable(SandboxError):
    code = "JOBS_UNAVAILABLE"
    status = 503


class JobRunner:
    """One zygote per runner; any number of jobs at once through it."""

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command or [sys.executable, "-I", "-m", "sandbox.jobs.zygote"]
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: Any = None
        self._layers: dict[str, bool] | None = None
        self._pending: dict[tuple[str, str], Future] = {}
        self._slots = itertools.count()

    def seal_report(self) -> SealReport:
        """The layers a job process holds on this machine, read from a sealed probe."""
        self._ensure_started()
        return SealReport(dict(self._layers or {}))

    def run(
        self,
        job_id: str,
        code: str,
        limits: JobLimits,
        answer: Callable[[str], Answer],
        cancel: threading.Event,
    ) -> JobRun:
        self._ensure_started()
        if not self.seal_report().sufficient:
            raise JobsUnavailable("jobs cannot be sealed on this machine")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        started = self._expect(job_id, "started")
        exited = self._expect(job_id, "exited")
        seal_limits = SealLimits(cpu_s=limits.cpu_s, memory_bytes=limits.memory_bytes)
        start = {
            "op": "start",
            "job": job_id,
            "slot": next(self._slots) % JOB_UIDS,
            "limits": seal_limits.__dict__,
            # The parent's own deadline backs the runner's, a little later.
            "wall_s": limits.wall_s + 1.0,
        }
        try:
            self._tell(start, theirs.fileno())
            theirs.close()
            started.result(START_TIMEOUT_S)
        except (OSError, FutureTimeout) as exc:
            ours.close()
            self._forget(job_id)
            raise JobsUnavailable("the job runner is not answering") from exc
        conversation = _Conversation(ours, limits, answer, cancel)
        try:
            run = conversation.hold(code)
        finally:
            ours.close()
        if run.status in ("timeout", "cancelled"):
            self._tell({"op": "kill", "job": job_id})
        try:
            ended = exited.result(limits.wall_s + EXIT_GRACE_S)
        except FutureTimeout:
            self._tell({"op": "kill", "job": job_id})
            ended = exited.result(EXIT_GRACE_S)
        self._forget(job_id)
        return _settle(run, ended)

    def close(self) -> None:
        with self._lock:
            if self._control is not None:
                # shutdown, not just close: it wakes the listener's recv and tells the parent.
                self._control.shutdown(socket.SHUT_RDWR)
                self._control.close()
                self._control = None
            if self._process is not None:
                self._process.wait(timeout=10)
                self._process = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with interrupts.held():
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [*self._command, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    env=ZYGOTE_ENV,
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            theirs.close()
            ours.settimeout(START_TIMEOUT_S)
            try:
                ready = _json(ours.recv(wire.MAX_MESSAGE_BYTES))
            except (OSError, ValueError) as exc:
                process.kill()
                raise JobsUnavailable("the job runner could not start") from exc
            ours.settimeout(None)
            self._control, self._process = ours, process
            self._layers = {str(k): v is True for k, v in ready.get("layers", {}).items()}
            threading.Thread(target=self._listen, args=(ours,), daemon=True).start()

    def _listen(self, control: socket.socket) -> None:
        """Route the parent's reports to the jobs waiting on them; on its death, fail them."""
        while True:
            try:
                data = control.recv(wire.MAX_MESSAGE_BYTES)
                message = _json(data) if data else None
            except (OSError, ValueError):
                message = None
            if message is None:
                break
            future = self._pending.pop((str(message.get("job")), str(message.get("op"))), None)
            if future is not None and not future.done():
                future.set_result(message)
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(JobsUnavailable("the job runner stopped"))

    def _expect(self, job_id: str, op: str) -> Future:
        future: Future = Future()
        self._pending[(job_id, op)] = future
        return future

    def _forget(self, job_id: str) -> None:
        for op in ("started", "exited"):
            self._pending.pop((job_id, op), None)

    def _tell(self, message: dict, fd: int | None = None) -> None:
        control = self._control
        if control is None:
            raise OSError("the job runner is not running")
        data = wire.encode(message)[wire.HEADER.size :]
        with self._send_lock:
            if fd is None:
                control.send(data)
            else:
                socket.send_fds(control, [data], [fd])


class _Conversation:
    """The runner's side of one job: send the code, answer its calls, collect its tables."""

    def __init__(
        self,
        channel: socket.socket,
        limits: JobLimits,
        answer: Callable[[str], Answer],
        cancel: threading.Event,
    ) -> None:
        self.channel = channel
        self.limits = limits
        self.answer = answer
        self.cancel = cancel
        self.deadline = time.monotonic() + limits.wall_s
        self.run = JobRun(status="failed", error="JOB_FAILED")
        self.output_bytes = 0
        # Every sql() call counts, answered or refused: each costs the gateway a check.
        self.asked = 0

    def hold(self, code: str) -> JobRun:
        try:
            wire.send(self.channel, {"code": code})
            while True:
                message = self._next()
                if message is None:
                    return self.run
                op = message.get("op")
                if op == "sql":
                    self._sql(message)
                elif op == "publish":
                    self._publish(message)
                elif op == "done":
                    return self._end("succeeded", None)
                elif op == "rejected":
                    return self._end("rejected", "JOB_REJECTED", _violations(message))
                elif op == "failed" and message.get("code") == "JOB_OUT_OF_MEMORY":
                    return self._end("failed", "JOB_OUT_OF_MEMORY")
                else:
                    self.run.failure = reported(message, code) if op == "failed" else {}
                    return self._end("failed", "JOB_FAILED")
        except wire.WireError:
            # Gone without a word (killed by a limit) or sent nonsense: the exit report decides.
            return self._end("failed", "JOB_FAILED")

    def _next(self) -> dict | None:
        """The job's next message, or None when cancelled or out of time (status set)."""
        while True:
            if self.cancel.is_set():
                self._end("cancelled", "CANCELLED")
                return None
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._end("timeout", "JOB_TIMEOUT")
                return None
            self.channel.settimeout(min(POLL_S, remaining))
            try:
                head = self.channel.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                continue
            except OSError as exc:
                raise wire.WireError("closed") from exc
            if not head:
                raise wire.WireError("closed")
            # The rest of a message must follow promptly, within the job's time.
            self.channel.settimeout(max(remaining, POLL_S))
            return wire.receive(self.channel)

    def _sql(self, message: dict) -> None:
        text = message.get("sql")
        if self.asked >= self.limits.max_queries:
            self._reply(ok=False, code="JOB_QUERY_LIMIT")
            return
        self.asked += 1
        if not isinstance(text, str):
            self._reply(ok=False, code="QUERY_REJECTED")
            return
        try:
            released = self.answer(text)
        except AnswerRefused as exc:
            self._reply(ok=False, code=exc.code)
            return
        self.run.answers.append(released)
        self._reply(ok=True, columns=released.columns, rows=released.rows)

    def _publish(self, message: dict) -> None:
        name, columns, rows = message.get("name"), message.get("columns"), message.get("rows")
        self.output_bytes += len(wire.encode({"columns": columns, "rows": rows}))
        full = len(self.run.tables) >= self.limits.max_tables
        shaped = isinstance(name, str) and isinstance(columns, list) and isinstance(rows, list)
        if full or self.output_bytes > self.limits.max_output_bytes:
            self._reply(ok=False, code="OUTPUT_LIMIT")
        elif not shaped or any(table.name == name for table in self.run.tables):
            self._reply(ok=False, code="OUTPUT_INVALID")
        else:
            self.run.tables.append(Published(name, columns, rows))
            self._reply(ok=True)

    def _reply(self, **message: Any) -> None:
        wire.send(self.channel, message)

    def _end(self, status: str, error: str | None, violations: list | None = None) -> JobRun:
        self.run.status, self.run.error = status, error
        self.run.violations = violations or []
        return self.run


def _settle(run: JobRun, ended: dict) -> JobRun:
    """Join what the job said with how its process ended; the process has the last word."""
    run.cpu_ms = int(ended.get("cpu_ms") or 0)
    killed, signal_name = ended.get("killed"), ended.get("signal")
    if run.status == "cancelled":
        return run
    if killed == "deadline" or signal_name in ("SIGXCPU",) or run.status == "timeout":
        # A CPU limit ends in SIGXCPU, or SIGKILL a second later if the job outlived it.
        return _ended_as(run, "timeout", "JOB_TIMEOUT")
    if signal_name == "SIGKILL" and killed is None:
        return _ended_as(run, "timeout", "JOB_TIMEOUT")
    if ended.get("exit_code") == child.EXIT_SEAL_FAILED:
        return _ended_as(run, "failed", "JOB_SEAL_FAILED")
    if run.status == "succeeded" and ended.get("exit_code") != child.EXIT_DONE:
        return _ended_as(run, "failed", "JOB_FAILED")
    if ended.get("exit_code") == child.EXIT_OUT_OF_MEMORY or signal_name == "SIGSEGV":
        return _ended_as(run, "failed", "JOB_OUT_OF_MEMORY")
    return run


def _ended_as(run: JobRun, status: str, error: str) -> JobRun:
    run.status, run.error, run.tables, run.failure = status, error, [], {}
    return run


def _violations(message: dict) -> list[dict]:
    """Only rule names the gate itself writes, with whole line numbers; anything else is
    dropped (names too: the process that sent them runs untrusted code)."""
    found = message.get("violations")
    kept = []
    for violation in found if isinstance(found, list) else []:
        if isinstance(violation, dict) and violation.get("rule") in CHECK_RULES:
            line = violation.get("line")
            whole = {"line": line} if type(line) is int else {}
            kept.append({"rule": violation["rule"], **whole})
    return kept


def _json(data: bytes) -> dict:
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("not a message")
    return message
