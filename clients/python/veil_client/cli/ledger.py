"""`ledger` commands that read a running Veil: receipts, checkpoints, the key and entries."""

from __future__ import annotations

from typing import Annotated

import typer

from veil_client.cli.output import Format, show, show_record
from veil_client.cli.session import Key, Output, Url, connect
from veil_client.models import Receipt
from veil_client.receipts import DEFAULT_ORIGIN
from veil_client.transport import DEFAULT_URL

PinnedKey = Annotated[
    str,
    typer.Option(
        "--public-key",
        envvar="VEIL_LEDGER_PUBLIC_KEY",
        help="The ledger's base64 Ed25519 key, pinned from a trusted source.",
    ),
]
Origin = Annotated[str, typer.Option(help="The log's name in its checkpoints.")]


def inclusion(
    index: Annotated[int, typer.Argument(help="The receipt's ledger_index.")],
    leaf_hash: Annotated[str, typer.Argument(help="The receipt's leaf_hash (hex).")],
    public_key: PinnedKey,
    origin: Origin = DEFAULT_ORIGIN,
    url: Url = DEFAULT_URL,
    format: Output = Format.table,
) -> None:
    """Prove a receipt is in the log: the checkpoint's signature under the pinned key, then
    the RFC 9162 inclusion proof; exit 1 if either fails."""
    receipt = Receipt(ledger_index=index, leaf_hash=leaf_hash)
    with connect(url, None, format, keyed=False) as veil:
        verified = veil.ledger.verify_receipt(receipt, public_key=public_key, origin=origin)
    show_record(verified, format)


def checkpoint(url: Url = DEFAULT_URL, format: Output = Format.table) -> None:
    """The newest signed checkpoint (not verified: `inclusion` verifies)."""
    with connect(url, None, format, keyed=False) as veil:
        show_record(veil.ledger.checkpoint(), format)


def public_key(url: Url = DEFAULT_URL, format: Output = Format.table) -> None:
    """The key the server says it signs with: compare it with one from a trusted source."""
    with connect(url, None, format, keyed=False) as veil:
        show_record(veil.ledger.public_key(), format)


def entries(
    after: Annotated[int | None, typer.Option(help="Entries after this index.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """The ledger entries you are a party to, oldest first."""
    with connect(url, key, format) as veil:
        items = veil.ledger.entries(after, limit)
    show(items, format, [item.model_dump() for item in items], ["index", "leaf_hash", "data"])


def register(group: typer.Typer) -> None:
    """Add these commands to a `ledger` group (the server's keeps its local `verify`)."""
    group.command("inclusion")(inclusion)
    group.command("checkpoint")(checkpoint)
    group.command("public-key")(public_key)
    group.command("entries")(entries)
