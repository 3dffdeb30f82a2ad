"""The control store's tables of principals, grants, approvals, quotas, suspensions, price
caps, registrations and data products."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("org", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("developer", sa.String(64), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("valid_until", sa.String(32), nullable=True, index=True),
)

grant_events = sa.Table(
    "grant_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("party", sa.String(64), nullable=True),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", sa.String(32), nullable=False),
)

# Kept only for grants with quotas; counts reserve before a query runs.
grant_usage = sa.Table(
    "grant_usage",
    metadata,
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), primary_key=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("queries_today", sa.BigInteger, nullable=False),
    sa.Column("rows_scanned", sa.BigInteger, nullable=False),
)

approvals = sa.Table(
    "grant_approvals",
    metadata,
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), primary_key=True),
    sa.Column("party", sa.String(64), primary_key=True),
    sa.Column("approver", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

suspensions = sa.Table(
    "suspensions",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

# Government-guided price caps (政府指导价): the most an asset, or every asset of a
# classification, may charge per rate; a rate left NULL is not capped.
price_caps = sa.Table(
    "price_caps",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("per_query_minor", sa.BigInteger, nullable=True),
    sa.Column("per_1k_rows_scanned_minor", sa.BigInteger, nullable=True),
    sa.Column("per_cpu_second_minor", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

# The registration procedure (数据资产登记): one row per registration of an asset, its
# documents, objections and steps kept with it as JSON (`governance/registrations.py`).
registrations = sa.Table(
    "registrations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("asset", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("applicant", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("card_sha256", sa.String(64), nullable=False),
    sa.Column("attachments", sa.Text, nullable=False),
    sa.Column("objections", sa.Text, nullable=False),
    sa.Column("notice_until", sa.String(32), nullable=True),
    sa.Column("code", sa.String(64), nullable=True, unique=True),
    sa.Column("certificate", sa.Text, nullable=True),
    sa.Column("history", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

# Data product descriptions filed by developers (`governance/products.py`).
data_products = sa.Table(
    "data_products",
    metadata,
    sa.Column("id", sa.String(34), primary_key=True),
    sa.Column("developer", sa.String(64), nullable=False),
    sa.Column("org", sa.String(200), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("product_date", sa.String(10), nullable=False),
    # JSON: [{"asset", "version"}] and [{"ledger_index", "leaf_hash"}], in the order filed.
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("receipts", sa.Text, nullable=False),
    # SHA-256 of the canonical JSON of `DataProduct.content()`: what its ledger entries commit to.
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("filed_at", sa.String(32), nullable=False),
    sa.Column("filed_index", sa.BigInteger, nullable=False),
    sa.Column("filed_leaf_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("withdrawn_at", sa.String(32), nullable=True),
    sa.Column("withdrawn_by", sa.String(64), nullable=True),
    sa.Column("withdrawal_reason", sa.Text, nullable=True),
    sa.Column("withdrawn_index", sa.BigInteger, nullable=True),
    sa.Column("withdrawn_leaf_hash", sa.String(64), nullable=True),
)
