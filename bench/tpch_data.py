"""TPC-H data as Veil assets: generated once per scale factor, customer key on every table.

DuckDB's `tpch` extension (from the pinned `duckdb-extension-tpch` wheel) generates the
tables; three assets come out, each a Parquet file with its card:

- `tpch.customer`: one row per customer, its market segment, nation and region;
- `tpch.orders`: one row per order, with the customer who placed it;
- `tpch.lineitem`: one row per order line, with the ordering customer carried over from
  `orders` (the privacy unit), the supplier's nation, and the TPC-H expressions that Veil
  only aggregates as plain columns (`l_revenue` = price less discount, `l_charge` with tax,
  `l_discount_amount`). Quantity and discount also come as dimensions (`l_qty`, `l_disc`),
  since Q6 filters on them and a measure may not be filtered.

Files are cached under ~/.cache/veil/tpch/sf<N>/ and reused while the SQL and columns that
made them are unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

CACHE = Path.home() / ".cache" / "veil" / "tpch"
PROVIDER = "tpc"
MONEY = "DECIMAL(15,2)"

LINEITEM_SQL = f"""
SELECT o.o_custkey AS l_custkey, l.l_orderkey, l.l_returnflag, l.l_linestatus, l.l_shipdate,
       l.l_shipmode, n.n_name AS l_suppnation,
       l.l_quantity, l.l_extendedprice, l.l_discount, l.l_tax,
       CAST(l.l_extendedprice * (1 - l.l_discount) AS {MONEY}) AS l_revenue,
       CAST(l.l_extendedprice * (1 - l.l_discount) * (1 + l.l_tax) AS {MONEY}) AS l_charge,
       CAST(l.l_extendedprice * l.l_discount AS {MONEY}) AS l_discount_amount,
       l.l_discount AS l_disc, CAST(l.l_quantity AS INTEGER) AS l_qty
FROM lineitem l
JOIN orders o ON l.l_orderkey = o.o_orderkey
JOIN supplier s ON l.l_suppkey = s.s_suppkey
JOIN nation n ON s.s_nationkey = n.n_nationkey
"""
ORDERS_SQL = """
SELECT o_custkey, o_orderkey, o_orderstatus, o_totalprice, o_orderdate, o_orderpriority,
       o_shippriority
FROM orders
"""
CUSTOMER_SQL = """
SELECT c.c_custkey, c.c_name, c.c_mktsegment, c.c_acctbal, n.n_name AS c_nation,
       r.r_name AS c_region
FROM customer c
JOIN nation n ON c.c_nationkey = n.n_nationkey
JOIN region r ON n.n_regionkey = r.r_regionkey
"""


def _column(name: str, type_: str, role: str, bounds: list[float] | None = None) -> dict:
    column = {"name": name, "type": type_, "role": role}
    return column | ({"bounds": bounds} if bounds is not None else {})


COLUMNS = {
    "lineitem": [
        _column("l_custkey", "BIGINT", "privacy_unit"),
        _column("l_orderkey", "BIGINT", "join_key"),
        _column("l_returnflag", "VARCHAR", "dimension"),
        _column("l_linestatus", "VARCHAR", "dimension"),
        _column("l_shipdate", "DATE", "dimension"),
        _column("l_shipmode", "VARCHAR", "dimension"),
        _column("l_suppnation", "VARCHAR", "dimension"),
        _column("l_quantity", MONEY, "measure", [0, 50]),
        _column("l_extendedprice", MONEY, "measure", [0, 105000]),
        _column("l_discount", MONEY, "measure", [0, 0.1]),
        _column("l_tax", MONEY, "measure", [0, 0.08]),
        _column("l_revenue", MONEY, "measure", [0, 105000]),
        _column("l_charge", MONEY, "measure", [0, 114000]),
        _column("l_discount_amount", MONEY, "measure", [0, 10500]),
        _column("l_disc", MONEY, "dimension"),
        _column("l_qty", "INTEGER", "dimension"),
    ],
    "orders": [
        _column("o_custkey", "BIGINT", "privacy_unit"),
        _column("o_orderkey", "BIGINT", "join_key"),
        _column("o_orderstatus", "VARCHAR", "dimension"),
        _column("o_totalprice", MONEY, "measure", [0, 600000]),
        _column("o_orderdate", "DATE", "dimension"),
        _column("o_orderpriority", "VARCHAR", "dimension"),
        _column("o_shippriority", "INTEGER", "dimension"),
    ],
    "customer": [
        _column("c_custkey", "BIGINT", "privacy_unit"),
        _column("c_name", "VARCHAR", "identifier"),
        _column("c_mktsegment", "VARCHAR", "dimension"),
        _column("c_acctbal", MONEY, "measure", [-1000, 10000]),
        _column("c_nation", "VARCHAR", "dimension"),
        _column("c_region", "VARCHAR", "dimension"),
    ],
}
SOURCES = {"lineitem": LINEITEM_SQL, "orders": ORDERS_SQL, "customer": CUSTOMER_SQL}
NATIONS = [
    "ALGERIA", "ARGENTINA", "BRAZIL", "CANADA", "CHINA", "EGYPT", "ETHIOPIA", "FRANCE",
    "GERMANY", "INDIA", "INDONESIA", "IRAN", "IRAQ", "JAPAN", "JORDAN", "KENYA", "MOROCCO",
    "MOZAMBIQUE", "PERU", "ROMANIA", "RUSSIA", "SAUDI ARABIA", "UNITED KINGDOM",
    "UNITED STATES", "VIETNAM",
]  # fmt: skip
# The public values of the dimensions the queries group by, so that differential privacy
# answers them without partition selection (and without refusing them as too many groups).
DOMAINS = {
    "l_returnflag": ["A", "N", "R"],
    "l_linestatus": ["F", "O"],
    "l_suppnation": NATIONS,
    "c_nation": NATIONS,
}
ROWS_PER_CUSTOMER = {"lineitem": 300, "orders": 60, "customer": 1}


@dataclass(frozen=True)
class TpchAsset:
    card: dict
    parquet: Path


def card(table: str, scale: float) -> dict:
    return {
        "id": f"tpch.{table}",
        "title": f"TPC-H {table} at scale factor {scale}",
        "description": "Synthetic TPC-H data for benchmarks; the customer is the privacy unit.",
        "provider": PROVIDER,
        "classification": "L2",
        "domain": "commerce",
        "rights": {
            "holder": PROVIDER,
            "source": "DuckDB tpch extension (dbgen)",
            "personal_data": False,
        },
        "columns": [
            column | ({"domain": DOMAINS[column["name"]]} if column["name"] in DOMAINS else {})
            for column in COLUMNS[table]
        ],
        # Under differential privacy (bench/tpch_compare.py's dp way): a customer's line items
        # fall in a few groups of one answer, a few dozen in each. And the most rows one
        # customer has, checked at registration (178 line items and 41 orders at scale 1).
        "privacy": {
            "max_groups_per_unit": 4,
            "max_rows_per_group": 50,
            "max_rows_per_unit": ROWS_PER_CUSTOMER[table],
        },  # fmt: skip
        "pricing": {"per_query_minor": 0, "currency": "CNY"},
        "revenue_shares_bp": {PROVIDER: 10000},
    }


def tpch_extension() -> Path:
    import duckdb_extension_tpch

    root = Path(duckdb_extension_tpch.__file__).parent / "extensions"
    return root / f"v{duckdb.__version__}" / "tpch.duckdb_extension"


def tpch_assets(scale: float) -> list[TpchAsset]:
    """The three assets at `scale`, generated on first use and cached."""
    folder = CACHE / f"sf{scale:g}"
    stamp = folder / "done.json"
    fingerprint = hashlib.sha256(json.dumps([SOURCES, COLUMNS]).encode()).hexdigest()
    if not (stamp.exists() and json.loads(stamp.read_text()).get("module") == fingerprint):
        _generate(scale, folder)
        stamp.write_text(json.dumps({"module": fingerprint, "scale": scale}))
    return [TpchAsset(card(table, scale), folder / f"{table}.parquet") for table in SOURCES]


def _generate(scale: float, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "dbgen.duckdb"
    database.unlink(missing_ok=True)
    connection = duckdb.connect(str(database))
    try:
        connection.execute("SET enable_progress_bar = false")
        connection.execute(f"LOAD '{tpch_extension()}'")
        connection.execute(f"CALL dbgen(sf = {scale})")
        for table, sql in SOURCES.items():
            target = str(folder / f"{table}.parquet")
            connection.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
    finally:
        connection.close()
        database.unlink(missing_ok=True)
