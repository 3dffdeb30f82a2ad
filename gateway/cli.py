"""The `veil` command: the local commands (init, demo, serve, migrate, keys, ledger verify,
policy) and, mounted from the veil-client distribution, every remote one."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from veil_client.cli import jobs as remote_jobs
from veil_client.cli import mount

from gateway.local_run import run_job
from services.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would print keys
    help="Veil secure data sandbox.",
)
ledger_app = typer.Typer(no_args_is_help=True, help="Inspect the usage ledger.")
app.add_typer(ledger_app, name="ledger")
policy_app = typer.Typer(no_args_is_help=True, help="Check and test Rego policies.")
app.add_typer(policy_app, name="policy")
keys_app = typer.Typer(no_args_is_help=True, help="Manage the keys that protect the assets.")
app.add_typer(keys_app, name="keys")
certificates_app = typer.Typer(no_args_is_help=True, help="Check registration certificates.")
app.add_typer(certificates_app, name="certificates")

PolicyDir = Annotated[
    Path | None,
    typer.Option("--dir", envvar="VEIL_POLICY_DIR", help="Operator modules beside the shipped."),
]

Home = Annotated[
    Path | None, typer.Option("--home", help="State directory (default $VEIL_HOME or ./.veil).")
]


def _settings(home: Path | None, processes: int | None = None) -> Settings:
    """The environment's settings with the options given; made anew, not copied, so that
    what follows from them (threads per process) follows."""
    given = {"home": home, "processes": processes}
    return Settings(**{name: value for name, value in given.items() if value is not None})


@app.command()
def init(home: Home = None) -> None:
    """Create keys, stores and an admin principal; print the admin key once."""
    from services.runtime import initialise

    admin_key = initialise(_settings(home))
    if admin_key is None:
        typer.echo("this home is already initialised", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"admin_key": admin_key}))


@app.command()
def demo(
    home: Home = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up only.")] = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    processes: Processes = None,
) -> None:
    """Set up demo assets, principals and approved grants, then serve."""
    from services.demo import CREDENTIALS_FILE, set_up_demo

    settings = _settings(home, processes)
    credentials = set_up_demo(settings)
    path = settings.home / CREDENTIALS_FILE
    key = credentials["analyst"]
    analyst = shlex.quote(key)
    base = f"http://{host}:{port}"
    veil = _this_veil()
    typer.echo(f"Demo ready; keys are in {path}.")
    typer.echo("\nAsk a first question with curl:")
    typer.echo(
        f"  curl -s {base}/v1/queries -H {shlex.quote(f'Authorization: Bearer {key}')} "
        "-H 'Content-Type: application/json' \\\n"
        '    -d \'{"sql": "SELECT district, COUNT(DISTINCT patient_id) AS patients, '
        "AVG(cost) AS avg_cost FROM hospital.visits GROUP BY district ORDER BY district\"}'"
    )
    typer.echo("\nor with the CLI, as the analyst:")
    remote = f"--url {base} --key {analyst}"
    typer.echo(f"  {veil} assets list {remote}")
    typer.echo(
        f"  {veil} queries run {remote} "
        '"SELECT department, SUM(cost) AS total FROM hospital.visits GROUP BY department"'
    )
    typer.echo(f"  {veil} usage {remote}")
    if not no_serve:
        _serve(settings, host, port)


Processes = Annotated[
    int | None,
    typer.Option(
        "--processes",
        min=1,
        help="Gateway processes sharing the port (default $VEIL_PROCESSES or 1).",
    ),
]


@app.command()
def serve(
    home: Home = None, host: str = "127.0.0.1", port: int = 8000, processes: Processes = None
) -> None:
    """Serve the HTTP API."""
    _serve(_settings(home, processes), host, port)


def _serve(settings: Settings, host: str, port: int) -> None:
    from gateway.serving import serve

    serve(settings, host, port)


@app.command()
def migrate(home: Home = None) -> None:
    """Bring the control store and the ledger to the newest schema, then exit (a deployment's
    migration Job runs this before the gateways start)."""
    from services.runtime import migrate_stores

    migrate_stores(_settings(home))
    typer.echo(json.dumps({"migrated": True}))


@keys_app.command("rotate-master")
def keys_rotate_master(home: Home = None) -> None:
    """Replace the master key and wrap every asset's data key and every registration
    document's key under the new one. Stop every gateway first; if interrupted, run it again
    to finish."""
    from services.keys import rotate_master_key

    settings = _settings(home)
    if not settings.master_key_path.exists():
        typer.echo(f"{settings.home} is not initialised", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(rotate_master_key(settings)))


@certificates_app.command("verify")
def certificates_verify(
    certificate: Annotated[
        Path, typer.Argument(help="The certificate: its signed note, or the JSON that holds it.")
    ],
    public_key: Annotated[
        str, typer.Option("--public-key", help="The ledger's public key, base64 (its /public-key).")
    ],
    name: Annotated[
        str, typer.Option("--name", help="The key's name (the ledger's origin).")
    ] = "veil.local/ledger",
) -> None:
    """Check a registration certificate offline against the ledger's public key; print what
    it certifies and exit 0 only if the ledger's key signed it. Whether it still stands
    (not cancelled, revoked or superseded) is on `GET /v1/certificates/{code}`."""
    from ledger import DocumentInvalid, open_document

    text = certificate.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        text = json.loads(text).get("certificate") or ""
    try:
        body = open_document(text, name, public_key, "certificate")
    except DocumentInvalid as error:
        typer.echo(json.dumps({"valid": False, "reason": str(error)}))
        raise typer.Exit(1) from error
    typer.echo(json.dumps({"valid": True, "certificate": body}, ensure_ascii=False))


@keys_app.command("rotate-signing")
def keys_rotate_signing(home: Home = None) -> None:
    """Replace the ledger's signing key; the log records the change under both keys. Stop
    every gateway first; if interrupted, run it again to finish."""
    from services.keys import rotate_signing_key

    settings = _settings(home)
    if not settings.signing_key_path.exists():
        typer.echo(f"{settings.home} is not initialised", err=True)
        raise typer.Exit(1)
    receipt = rotate_signing_key(settings)
    typer.echo(json.dumps({"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash}))


@keys_app.command("backup")
def keys_backup(
    to: Annotated[Path, typer.Option("--to", help="A new or empty folder for the backup.")],
    home: Home = None,
) -> None:
    """Copy the master and signing keys and every wrapped data key into a new folder, with a
    manifest of their digests. Keep it apart from the data, no longer than your destruction
    policy allows."""
    from services.keys import backup_keys

    settings = _settings(home)
    if not settings.master_key_path.exists():
        typer.echo(f"{settings.home} is not initialised", err=True)
        raise typer.Exit(1)
    try:
        typer.echo(json.dumps(backup_keys(settings, to)))
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error


@keys_app.command("restore")
def keys_restore(
    source: Annotated[
        Path, typer.Option("--from", help="A `veil keys backup` folder, or a copy of keys/.")
    ],
    home: Home = None,
) -> None:
    """Put back the keys a backup holds that the home lacks, and shred again every asset the
    ledger records as destroyed that came back; print what was done. Stop every gateway
    first."""
    from ledger import LedgerError
    from services.keys import restore_keys

    if not source.is_dir():
        typer.echo(f"{source} is not a folder", err=True)
        raise typer.Exit(1)
    try:
        report = restore_keys(_settings(home), source)
    except (ValueError, OSError, LedgerError) as error:
        typer.echo(f"the restore did not finish: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(json.dumps(report))


@ledger_app.command("verify")
def ledger_verify(home: Home = None) -> None:
    """Exit 0 only if every entry and every checkpoint verifies."""
    from ledger import Ledger

    settings = _settings(home)
    if not settings.signing_key_path.exists():
        typer.echo("no ledger here: run `veil init` first", err=True)
        raise typer.Exit(2)
    report = Ledger.open(settings.ledger_url, settings.signing_key_path).verify()
    typer.echo(
        json.dumps({"ok": report.ok, "tree_size": report.tree_size, "problems": report.problems})
    )
    raise typer.Exit(0 if report.ok else 1)


@policy_app.command("check")
def policy_check(policy_dir: PolicyDir = None) -> None:
    """Compile the shipped and operator modules in both engines; exit 0 only if both accept."""
    from policies import EmbeddedEngine, PolicyError
    from services.policies import rego_paths

    try:
        EmbeddedEngine(policy_dir)
    except PolicyError as exc:
        typer.echo(f"embedded engine: {exc}", err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(_opa("check", "--strict", *rego_paths(policy_dir)))


@policy_app.command("test")
def policy_test(policy_dir: PolicyDir = None) -> None:
    """Run the operator's *_test.rego under OPA with every module (the shipped tests without)."""
    from services.policies import rego_paths

    raise typer.Exit(_opa("test", *rego_paths(policy_dir)))


def _opa(*args: str) -> int:
    import subprocess

    from services.policies import opa_binary

    binary = opa_binary()
    if binary is None:
        typer.echo("no opa binary on PATH (make test installs one in ~/.cache/veil/bin)", err=True)
        return 2
    return subprocess.run([binary, *args], check=False).returncode


def _this_veil() -> str:
    """The running `veil` as the shell should name it here: relative to the working directory
    when it lies beneath it (`.venv/bin/veil` after `make demo`), else absolute."""
    script = Path(sys.argv[0])
    if script.name != "veil" or not script.is_file():
        # Run as `python -m gateway.cli`: the console script beside this interpreter.
        script = Path(sys.executable).with_name("veil")
    if not script.is_file():
        return f"{shlex.quote(sys.executable)} -m gateway.cli"
    absolute = Path(os.path.abspath(script))
    if absolute.is_relative_to(Path.cwd()):
        return shlex.quote(str(absolute.relative_to(Path.cwd())))
    return shlex.quote(str(absolute))


mount(app, ledger_app)
# Needs the sandbox, so only the server's `veil` has it, not the client's `veil-client`.
remote_jobs.app.command("run")(run_job)


if __name__ == "__main__":  # pragma: no cover
    app()
