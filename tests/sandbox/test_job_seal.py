"""The OS seal, layer by layer: raw Python in a sealed job process, as if RestrictedPython had
been escaped, tries to read, write, stat, connect, exec, fork, exhaust memory, and reach
other processes (signals, rlimits, priorities, scheduling, CPU clocks).

Each layer is shown alone, holding against the probes it is there for, and the full seal
against all of them, with the runner as root and as an unprivileged user (as the Dockerfile
runs it). A run with no layer shows the probes can succeed, so none is vacuous.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest

from sandbox.jobs.runner import Answer, JobLimits, JobRunner
from sandbox.jobs.seal import LAYERS, REQUIRED

ROOT = Path(__file__).resolve().parents[2]
PROBE = [sys.executable, "-I", str(ROOT / "tests" / "sandbox" / "seal_probe.py")]
PROBE_PARENT = [*PROBE, "zygote"]
# How the Dockerfile runs the gateway: a user of its own, no groups, no capabilities.
UNPRIVILEGED = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--inh-caps=-all",
                "--"]  # fmt: skip
IDENTITIES = {
    "root": PROBE_PARENT,
    "unprivileged": [*UNPRIVILEGED, *PROBE_PARENT],
    # A pod under Kubernetes' RuntimeDefault seccomp: unprivileged, no namespace to enter.
    "unprivileged-without-namespaces": [*UNPRIVILEGED, *PROBE, "zygote-without-namespaces"],
}

PROBES = """
import errno, os, resource, select, socket, time

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

def refused_unless(found):
    if not found:
        raise OSError(errno.EPERM, "refused")

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
attempt("prlimit_parent", lambda: resource.prlimit(PARENT, resource.RLIMIT_NOFILE))
attempt("priority_of_parent", lambda: os.getpriority(os.PRIO_PROCESS, PARENT))
attempt("affinity_of_parent", lambda: os.sched_getaffinity(PARENT))
attempt("scheduler_of_parent", lambda: os.sched_getscheduler(PARENT))
attempt("cpu_clock_of_parent", lambda: time.clock_gettime(((~PARENT) << 3) | 2))
attempt("stat_host_file", lambda: os.stat("/etc/passwd"))
attempt("lstat_root", lambda: os.lstat("/"))
attempt("readlink_exe", lambda: os.readlink("/proc/self/exe"))
attempt("access_host_file", lambda: refused_unless(os.access("/etc/passwd", os.F_OK)))
attempt("uname", lambda: os.uname())
attempt("sleep", lambda: time.sleep(0.001))
attempt("select_wait", lambda: select.select([], [], [], 0.001))
"""
# Reaching other processes and the host's file metadata: the probes the escape used.
OUTSIDE = ("prlimit_parent", "priority_of_parent", "affinity_of_parent", "scheduler_of_parent",
           "cpu_clock_of_parent", "stat_host_file", "lstat_root", "readlink_exe",
           "access_host_file", "uname", "sleep", "select_wait")  # fmt: skip


def let_others_search(path: Path) -> None:
    """The unprivileged runner reads this checkout: a fresh clone may sit in a 0700 temp dir."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


@pytest.fixture(scope="module", params=IDENTITIES, ids=IDENTITIES)
def runner(request):
    if request.param != "root":
        let_others_search(ROOT)
    runner = JobRunner(command=IDENTITIES[request.param])
    runner.identity = request.param
    yield runner
    runner.close()


def as_root(runner: JobRunner) -> bool:
    return runner.identity == "root"


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


def test_this_machine_grants_every_required_layer(runner) -> None:
    report = runner.seal_report()
    assert {layer: report.layers[layer] for layer in REQUIRED} == dict.fromkeys(REQUIRED, True)
    assert report.sufficient
    # Only root can hand a job a user of its own; the rest hold either way.
    assert report.layers["user"] is as_root(runner)
    assert report.layers["network_namespace"] is ("without-namespaces" not in runner.identity)


def test_the_probes_succeed_with_no_layer(runner, targets) -> None:
    """The control: the same probes reach the host when nothing but the namespace stands."""
    outcomes = probe(runner, targets, [])
    reached = ["read_host_file", "list_root", "open_many", "socket", "unix_socket",
               "signal_parent", "fork_bomb", "memory_bomb", "exec", *OUTSIDE]  # fmt: skip
    if as_root(runner):  # the unprivileged runner cannot read or write root's files anyway
        reached += ["read_private_file", "write_file"]
    for name in reached:
        assert outcomes[name] == "allowed", (name, outcomes[name])
    # The zygote left the network for all its children, whatever the layers, where it could.
    network_left = runner.seal_report().layers["network_namespace"]
    assert outcomes["connect"] == ("ENETUNREACH" if network_left else "allowed")


def test_the_host_listener_is_reachable_outside_the_namespace(targets) -> None:
    socket.create_connection(("127.0.0.1", targets["port"]), 2).close()


def test_full_seal_refuses_every_probe(runner, targets) -> None:
    Path(targets["writable"]).unlink(missing_ok=True)
    outcomes = probe(runner, targets, list(LAYERS))
    assert "allowed" not in outcomes.values(), outcomes
    assert outcomes["memory_bomb"] == "MemoryError"
    assert not Path(targets["writable"]).exists()


def test_required_layers_alone_refuse_every_probe(runner, targets) -> None:
    """What a pod under RuntimeDefault seccomp has: no user of its own, maybe no namespace."""
    outcomes = probe(runner, targets, list(REQUIRED))
    assert "allowed" not in outcomes.values(), outcomes


def test_landlock_alone_shuts_the_filesystem(runner, targets) -> None:
    outcomes = probe(runner, targets, ["landlock"])
    for name in ("read_host_file", "read_private_file", "list_root", "write_file", "open_many"):
        assert outcomes[name] == "EACCES", name
    assert outcomes["exec"] == "EACCES"  # the fork runs; its exec is refused
    assert outcomes["socket"] == "allowed"  # not Landlock's to stop here: seccomp's
    assert outcomes["stat_host_file"] == "allowed"  # Landlock leaves metadata: seccomp's


def test_seccomp_alone_denies_sockets_processes_files_and_metadata(runner, targets) -> None:
    outcomes = probe(runner, targets, ["seccomp"])
    for name in ("read_host_file", "write_file", "socket", "unix_socket", "signal_parent",
                 "fork_bomb", "exec", "open_many", *OUTSIDE):  # fmt: skip
        assert outcomes[name] == "EPERM", (name, outcomes[name])
    assert outcomes["connect"] != "allowed"
    assert outcomes["memory_bomb"] == "allowed"  # the rlimits' to stop


def test_job_user_alone_reaches_no_private_file_and_no_other_process(runner, targets) -> None:
    outcomes = probe(runner, targets, ["user"])
    if not as_root(runner):  # no user of its own to become: the other layers must hold alone
        assert outcomes["signal_parent"] == outcomes["prlimit_parent"] == "allowed"
        return
    assert outcomes["read_private_file"] == "EACCES"
    assert outcomes["write_file"] == "EACCES"
    assert outcomes["signal_parent"] == "EPERM"
    assert outcomes["prlimit_parent"] == "EPERM"
    assert outcomes["read_host_file"] == "allowed"  # world-readable: Landlock's and seccomp's


def test_rlimits_alone_stop_memory_files_and_descriptors(runner, targets) -> None:
    outcomes = probe(runner, targets, ["rlimits"])
    assert outcomes["memory_bomb"] == "MemoryError"
    assert outcomes["open_many"] == "EMFILE"
    if as_root(runner):
        assert outcomes["write_file"] == "EFBIG"


def test_rlimits_stop_a_fork_bomb(runner, targets) -> None:
    outcomes = probe(runner, targets, ["rlimits", "user"])
    assert outcomes["fork_bomb"] == "EAGAIN"
    assert outcomes["exec"] == "EAGAIN"


def test_a_busy_loop_is_killed_by_the_cpu_limit(runner) -> None:
    code = json.dumps({"layers": ["rlimits"], "source": "while True:\n    pass"})
    limits = JobLimits(wall_s=30, cpu_s=1)
    run = runner.run("busy", code, limits, _no_sql, threading.Event())
    assert (run.status, run.error) == ("timeout", "JOB_TIMEOUT")
    assert 900 <= run.cpu_ms < 5000


def test_a_job_runs_at_the_lowest_cpu_priority(runner) -> None:
    """A busy job yields the CPU to the queries beside it, so its load says little to a
    developer timing its own queries; without the rlimits layer it would not."""
    source = "import os\nresults['niceness'] = str(os.getpriority(os.PRIO_PROCESS, 0))"
    for layers, niceness in ((["rlimits"], "19"), ([], "0")):
        code = json.dumps({"layers": layers, "source": source})
        run = runner.run("nice", code, JobLimits(wall_s=20), _no_sql, threading.Event())
        assert dict(run.tables[0].rows)["niceness"] == niceness, layers


def test_a_job_past_its_wall_clock_deadline_is_killed(runner) -> None:
    code = json.dumps({"layers": list(LAYERS), "source": "while True:\n    pass"})
    run = runner.run("spinner", code, JobLimits(wall_s=1, cpu_s=30), _no_sql, threading.Event())
    assert (run.status, run.error) == ("timeout", "JOB_TIMEOUT")


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


SCAN_FOR_TENANTS = """
import gc, sys
mark = "tenant" + "-secret"
decoy = mark + "-decoy"  # shows the scan finds what is there
found = set()
def scan(value):
    if isinstance(value, str) and mark in value and value is not mark:
        found.add(value)
    elif isinstance(value, (bytes, bytearray)) and mark.encode() in value:
        found.add(repr(value))
for held in gc.get_objects():
    scan(held)
    if isinstance(held, dict):
        for key, value in list(held.items()):
            scan(key)
            scan(value)
    elif isinstance(held, (list, tuple, set, frozenset)):
        for value in held:
            scan(value)
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
        scan(value)
    frame = frame.f_back
for value in sys.argv + list(sys.modules):
    scan(value)
results.update({value: "found" for value in found})
"""


def test_a_job_process_holds_nothing_of_another_job(runner) -> None:
    """With another tenant's job running, raw Python in a job walks every object the garbage
    collector knows, every frame and its own arguments: no job id but the decoy it planted."""
    other_started, scanned = threading.Event(), threading.Event()

    def hold_until_scanned(text: str) -> Answer:
        other_started.set()
        scanned.wait(30)
        return Answer(["x"], [], [], [])

    other = json.dumps({"layers": list(LAYERS), "source": "ASK('running')"})
    limits = JobLimits(wall_s=30)
    runs: dict = {}
    holder = threading.Thread(
        target=lambda: runs.update(
            other=runner.run("tenant-secret-A", other, limits, hold_until_scanned,
                             threading.Event())
        )
    )  # fmt: skip
    holder.start()
    assert other_started.wait(30)
    try:
        code = json.dumps({"layers": list(LAYERS), "source": SCAN_FOR_TENANTS})
        run = runner.run("tenant-secret-B", code, limits, _no_sql, threading.Event())
    finally:
        scanned.set()
        holder.join(30)
    assert run.status == "succeeded", (run.status, run.error)
    assert dict(run.tables[0].rows) == {"tenant-secret-decoy": "found"}
    assert runs["other"].status == "succeeded"
