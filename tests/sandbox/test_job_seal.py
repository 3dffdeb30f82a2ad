"""The OS seal, layer by layer: raw Python in a sealed job process, as if RestrictedPython had
been escaped, tries to read, write, connect, exec, fork and exhaust memory.

Each layer is shown alone, holding against the probes it is there for, and the full seal
against all of them. A run with no layer shows the probes can succeed, so none is vacuous.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from sandbox.jobs.runner import Answer, JobLimits, JobRunner
from sandbox.jobs.seal import LAYERS

ROOT = Path(__file__).resolve().parents[2]
PROBE_PARENT = [
    sys.executable, "-I", "-c",
    f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
    "from tests.sandbox.seal_probe import main; main()",
]  # fmt: skip

PROBES = """
import errno, os, socket

def attempt(name, action):
    try:
        action()
        results[name] = "allowed"
    except MemoryError:
        results[name] = "MemoryError"
    except OSError as exc:
        results[name] = errno.errorcode.get(exc.errno, "OSError")
    except Exception as exc:
        results[name] = type(exc).__name__

def write_file():
    with open(TARGETS["writable"], "w") as f:
        f.write("x" * 4096)

def open_many():
    held = [open("/dev/null") for _ in range(64)]

def fork_bomb():
    children = [os.fork() for _ in range(8)]
    if 0 in children:
        os._exit(0)

def forked_exec():
    pid = os.fork()
    if pid == 0:
        try:
            os.execv("/bin/true", ["true"])
        except OSError as exc:
            os._exit(100 + exc.errno)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code >= 100:
        raise OSError(code - 100, "exec refused")

attempt("read_host_file", lambda: open("/etc/passwd").read())
attempt("read_private_file", lambda: open(TARGETS["private"]).read())
attempt("list_root", lambda: os.listdir("/"))
attempt("write_file", write_file)
attempt("open_many", open_many)
attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
attempt("connect", lambda: socket.create_connection(("127.0.0.1", TARGETS["port"]), 2).close())
attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX).close())
attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
attempt("fork_bomb", fork_bomb)
attempt("memory_bomb", lambda: bytearray(1024 ** 3))
attempt("exec", forked_exec)
"""


@pytest.fixture(scope="module")
def runner():
    runner = JobRunner(command=PROBE_PARENT)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """A root-only file, a file to write and a listening port on the host's loopback."""
    home = tmp_path_factory.mktemp("seal")
    private = home / "secret.txt"
    private.write_text("private")
    private.chmod(0o600)
    home.chmod(0o700)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_accept_forever, args=(listener,), daemon=True).start()
    yield {
        "private": str(private),
        "writable": str(home / "written.txt"),
        "port": listener.getsockname()[1],
    }
    listener.close()


def _accept_forever(listener: socket.socket) -> None:
    while True:
        try:
            listener.accept()[0].close()
        except OSError:
            return


def probe(runner: JobRunner, targets: dict, layers: list[str]) -> dict[str, str]:
    source = f"TARGETS = {json.dumps(targets)}\n{PROBES}"
    code = json.dumps({"layers": layers, "source": source})
    limits = JobLimits(wall_s=20, memory_bytes=512 * 1024 * 1024)
    run = runner.run(f"probe-{'-'.join(layers)}", code, limits, _no_sql, threading.Event())
    assert run.status == "succeeded", (run.status, run.error)
    return dict(run.tables[0].rows)


def _no_sql(text: str) -> Answer:
    raise AssertionError("probes ask no queries")


def test_this_machine_grants_every_layer(runner) -> None:
    report = runner.seal_report()
    assert report.layers == {layer: True for layer in LAYERS}
    assert report.sufficient


def test_the_probes_succeed_with_no_layer(runner, targets) -> None:
    """The control: the same probes reach the host when nothing but the namespace stands."""
    outcomes = probe(runner, targets, [])
    for name in (
        "read_host_file",
        "read_private_file",
        "list_root",
        "write_file",
        "open_many",
        "socket",
        "unix_socket",
        "signal_parent",
        "fork_bomb",
        "memory_bomb",
        "exec",
    ):
        assert outcomes[name] == "allowed", name
    # The warm parent left the network for all its children, whatever the layers.
    assert outcomes["connect"] == "ENETUNREACH"


def test_the_host_listener_is_reachable_outside_the_namespace(targets) -> None:
    socket.create_connection(("127.0.0.1", targets["port"]), 2).close()


def test_full_seal_refuses_every_probe(runner, targets) -> None:
    Path(targets["writable"]).unlink(missing_ok=True)
    outcomes = probe(runner, targets, list(LAYERS))
    assert "allowed" not in outcomes.values(), outcomes
    assert outcomes["memory_bomb"] == "MemoryError"
    assert not Path(targets["writable"]).exists()


def test_landlock_alone_shuts_the_filesystem(runner, targets) -> None:
    outcomes = probe(runner, targets, ["landlock"])
    for name in ("read_host_file", "read_private_file", "list_root", "write_file", "open_many"):
        assert outcomes[name] == "EACCES", name
    assert outcomes["exec"] == "EACCES"  # the fork runs; its exec is refused
    assert outcomes["socket"] == "allowed"  # not Landlock's to stop here: seccomp's


def test_seccomp_alone_denies_sockets_processes_and_files(runner, targets) -> None:
    outcomes = probe(runner, targets, ["seccomp"])
    for name in (
        "read_host_file",
        "write_file",
        "socket",
        "unix_socket",
        "connect",
        "signal_parent",
        "fork_bomb",
        "exec",
        "open_many",
    ):
        assert outcomes[name] == "EPERM", name
    assert outcomes["memory_bomb"] == "allowed"  # the rlimits' to stop


def test_job_user_alone_reaches_no_private_file_and_no_other_process(runner, targets) -> None:
    outcomes = probe(runner, targets, ["user"])
    assert outcomes["read_private_file"] == "EACCES"
    assert outcomes["write_file"] == "EACCES"
    assert outcomes["signal_parent"] == "EPERM"
    assert outcomes["read_host_file"] == "allowed"  # world-readable: Landlock's and seccomp's


def test_rlimits_alone_stop_memory_files_and_descriptors(runner, targets) -> None:
    outcomes = probe(runner, targets, ["rlimits"])
    assert outcomes["memory_bomb"] == "MemoryError"
    assert outcomes["write_file"] == "EFBIG"
    assert outcomes["open_many"] == "EMFILE"


def test_rlimits_with_the_job_user_stop_a_fork_bomb(runner, targets) -> None:
    outcomes = probe(runner, targets, ["rlimits", "user"])
    assert outcomes["fork_bomb"] == "EAGAIN"
    assert outcomes["exec"] == "EAGAIN"


def test_a_busy_loop_is_killed_by_the_cpu_limit(runner) -> None:
    code = json.dumps({"layers": ["rlimits"], "source": "while True:\n    pass"})
    limits = JobLimits(wall_s=30, cpu_s=1)
    run = runner.run("busy", code, limits, _no_sql, threading.Event())
    assert (run.status, run.error) == ("timeout", "JOB_TIMEOUT")
    assert 900 <= run.cpu_ms < 5000


def test_a_sleeping_job_is_killed_at_its_wall_clock_deadline(runner) -> None:
    code = json.dumps({"layers": list(LAYERS), "source": "import time\ntime.sleep(60)"})
    run = runner.run("sleeper", code, JobLimits(wall_s=1), _no_sql, threading.Event())
    assert (run.status, run.error) == ("timeout", "JOB_TIMEOUT")
    assert run.cpu_ms < 1000


def test_the_parent_holds_no_secret_in_its_environment(runner) -> None:
    source = "import os\nresults.update({k: 'present' for k in os.environ})"
    code = json.dumps({"layers": [], "source": source})
    os.environ["VEIL_TEST_SECRET"] = "should-not-pass"
    try:
        fresh = JobRunner(command=PROBE_PARENT)
        run = fresh.run("env", code, JobLimits(), _no_sql, threading.Event())
        fresh.close()
    finally:
        del os.environ["VEIL_TEST_SECRET"]
    assert set(dict(run.tables[0].rows)) <= {"PATH", "LANG", "LC_CTYPE"}
