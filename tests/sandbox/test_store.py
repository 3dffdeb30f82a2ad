"""The encrypted asset store: data keys, wrong keys and all-or-nothing registration."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from sandbox import keys
from sandbox.duck import writer_connection
from sandbox.errors import CardInvalid, FileInvalid
from sandbox.store import LOCK_FILE, MARKER_FILE, AssetStore

CARD = {
    "id": "city.households",
    "title": "Households",
    "provider": "city",
    "classification": "L2",
    "domain": "civil",
    "rights": {"holder": "city"},
    "columns": [
        {"name": "household", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "size", "type": "INTEGER", "role": "dimension"},
    ],
    "revenue_shares_bp": {"city": 10000},
}


@pytest.fixture
def store(tmp_path):
    return AssetStore(tmp_path / "assets", tmp_path / "keyring", b"k" * 32)


def _csv(tmp_path, text: str):
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path


def test_data_file_opens_only_with_its_key(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\nh2,4\n"))
    (attachment,) = store.attachments()
    connection = duckdb.connect()
    with pytest.raises(duckdb.Error):
        connection.execute(f"ATTACH '{attachment.path}' AS x (READ_ONLY)")
    wrong = keys.duckdb_key(b"w" * 32)
    with pytest.raises(duckdb.Error):
        connection.execute(f"ATTACH '{attachment.path}' AS y (ENCRYPTION_KEY '{wrong}', READ_ONLY)")
    connection.execute(
        f"ATTACH '{attachment.path}' AS z (ENCRYPTION_KEY '{attachment.key}', READ_ONLY)"
    )
    assert connection.execute("SELECT sum(size) FROM z.main.data").fetchone() == (7,)


def test_master_key_binds_the_asset_id(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    wrapped = (store.keyring / f"{CARD['id']}.wrapped").read_bytes()
    with pytest.raises(ValueError):
        keys.unwrap(b"k" * 32, wrapped, "other.asset")
    with pytest.raises(ValueError):
        keys.unwrap(b"x" * 32, wrapped, CARD["id"])


def test_failed_registration_leaves_nothing(store, tmp_path) -> None:
    with pytest.raises(FileInvalid):
        store.register(CARD, _csv(tmp_path, "household,size\nh1,big\n"))
    with pytest.raises(CardInvalid):
        store.register(dict(CARD, classification="L7"), _csv(tmp_path, "household,size\nh1,1\n"))
    assert {path.name for path in store.root.iterdir()} <= {LOCK_FILE, MARKER_FILE}
    assert store.list() == []


def test_registered_assets_survive_a_restart(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    again = AssetStore(store.root, store.keyring, b"k" * 32)
    assert [a.card.id for a in again.list()] == [CARD["id"]]
    assert again.get(CARD["id"]).row_count == 1


def test_destroy_shreds_the_key(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    gone = store.destroy(CARD["id"])
    assert gone.card.id == CARD["id"] and gone.row_count == 1
    assert not (store.root / CARD["id"]).exists()
    assert not (store.keyring / f"{CARD['id']}.wrapped").exists()
    assert store.list() == [] and list(store.destroyed()) == [CARD["id"]]
    again = AssetStore(store.root, store.keyring, b"k" * 32)
    assert again.list() == [] and list(again.destroyed()) == [CARD["id"]]


def test_a_backup_of_the_data_opens_nothing_once_destroyed(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    backup = tmp_path / "backup"
    shutil.copytree(store.root, backup)
    store.destroy(CARD["id"])
    shutil.rmtree(store.root)
    shutil.copytree(backup, store.root)  # restore the asset files from before the destruction
    restored = AssetStore(store.root, store.keyring, b"k" * 32)
    assert restored.list() == [] and restored.attachments() == []
    data = store.root / CARD["id"] / "data.duckdb"
    with pytest.raises(duckdb.Error):  # and the file on its own is ciphertext
        duckdb.connect().execute(f"ATTACH '{data}' AS x (READ_ONLY)")


def test_a_store_from_before_the_keyring_moves_its_keys(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    key = store.keyring / f"{CARD['id']}.wrapped"
    key.rename(store.root / CARD["id"] / "key.wrapped")  # the old layout
    again = AssetStore(store.root, store.keyring, b"k" * 32)
    assert [a.card.id for a in again.list()] == [CARD["id"]] and key.exists()
    assert not (store.root / CARD["id"] / "key.wrapped").exists()


def test_the_writer_has_no_spill_directory_for_plaintext() -> None:
    # DuckDB's default spills to `.tmp` in the working directory, outside the encrypted store.
    connection = writer_connection()
    try:
        (directory,) = connection.execute("SELECT current_setting('temp_directory')").fetchone()
    finally:
        connection.close()
    assert directory == ""


def _sum(store, asset_id: str) -> int:
    attachment = next(a for a in store.attachments() if a.asset_id == asset_id)
    connection = duckdb.connect()
    connection.execute(
        f"ATTACH '{attachment.path}' AS d (ENCRYPTION_KEY '{attachment.key}', READ_ONLY)"
    )
    return connection.execute("SELECT sum(size) FROM d.main.data").fetchone()[0]


def test_a_card_update_changes_the_card_never_the_data(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    updated = store.update_card({**CARD, "title": "Households 2024", "stewards": ["Civil office"]})
    assert (updated.version, updated.revision) == (1, 2)
    again = AssetStore(store.root, store.keyring, b"k" * 32).get(CARD["id"])
    assert again.card.title == "Households 2024" and again.revision == 2
    assert [(h["version"], h["revision"]) for h in store.history(CARD["id"])] == [(1, 1), (1, 2)]
    assert store.history(CARD["id"])[0]["card"]["title"] == "Households"
    assert _sum(store, CARD["id"]) == 3
    columns = [*CARD["columns"][:1], {"name": "size", "type": "INTEGER", "role": "measure",
                                      "bounds": [0, 10]}]  # fmt: skip
    with pytest.raises(CardInvalid) as refused:
        store.update_card({**CARD, "columns": columns})
    assert refused.value.violations[0].rule == "columns_changed"
    with pytest.raises(CardInvalid):
        store.update_card({**CARD, "provider": "someone_else"})


def test_a_new_data_version_replaces_data_and_key(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    first_key = (store.keyring / f"{CARD['id']}.wrapped").read_bytes()
    newer = store.register_version(CARD, _csv(tmp_path, "household,size\nh1,3\nh2,5\n"))
    assert (newer.version, newer.revision, newer.row_count) == (2, 1, 2)
    assert (store.keyring / f"{CARD['id']}.wrapped").read_bytes() != first_key
    assert _sum(store, CARD["id"]) == 8
    assert not list(store.root.glob(".retired-*")) and not list(store.keyring.glob(".*"))
    assert [h["version"] for h in store.history(CARD["id"])] == [1, 2]
    with pytest.raises(FileInvalid):  # a bad file leaves version 2 as it was
        store.register_version(CARD, _csv(tmp_path, "household,weight\nh1,3\n"))
    assert store.get(CARD["id"]).version == 2 and _sum(store, CARD["id"]) == 8


def test_an_id_registered_again_after_destruction_is_the_next_version(store, tmp_path) -> None:
    store.register(CARD, _csv(tmp_path, "household,size\nh1,3\n"))
    store.destroy(CARD["id"])
    again = store.register(CARD, _csv(tmp_path, "household,size\nh9,1\n"))
    assert again.version == 2 and store.destroyed() == {}


CHECKED = {**CARD, "privacy": {"max_rows_per_unit": 2}}


@pytest.mark.parametrize(
    "rows",
    [
        "h1,3\nh1,4\nh1,5\nh2,1\n",  # one household with three rows
        "h1,3\n,4\n,5\n,6\nh2,1\n",  # rows without a unit count as one unit's
    ],
)
def test_a_unit_with_more_rows_than_the_card_allows_is_refused(store, tmp_path, rows) -> None:
    with pytest.raises(FileInvalid) as refused:
        store.register(CHECKED, _csv(tmp_path, "household,size\n" + rows))
    assert [(v.rule, v.column) for v in refused.value.violations] == [
        ("rows_per_unit_exceeded", "household")
    ]
    assert store.list() == [] and not list(store.root.glob("*/data.duckdb"))


def test_data_within_the_rows_per_unit_is_stored_as_checked(store, tmp_path) -> None:
    stored = store.register(CHECKED, _csv(tmp_path, "household,size\nh1,3\nh1,4\nh2,1\n"))
    assert stored.rows_per_unit == 2
    reopened = AssetStore(store.root, store.keyring, b"k" * 32)
    assert reopened.get(CARD["id"]).rows_per_unit == 2
    # A card without the bound: the data is not checked against one, and none is claimed.
    plain = store.register({**CARD, "id": "city.plain"}, _csv(tmp_path, "household,size\nh1,3\n"))
    assert plain.rows_per_unit is None


def test_the_rows_per_unit_changes_only_with_data_checked_against_it(store, tmp_path) -> None:
    store.register(CHECKED, _csv(tmp_path, "household,size\nh1,3\nh1,4\n"))
    for privacy in ({"max_rows_per_unit": 9}, {}):
        with pytest.raises(CardInvalid) as refused:
            store.update_card({**CHECKED, "privacy": privacy})
        assert [v.rule for v in refused.value.violations] == ["rows_per_unit_changed"]
    assert store.get(CARD["id"]).rows_per_unit == 2
    looser = {**CHECKED, "privacy": {"max_rows_per_unit": 3}}
    stored = store.register_version(looser, _csv(tmp_path, "household,size\nh1,3\nh1,4\nh1,5\n"))
    assert stored.rows_per_unit == 3
