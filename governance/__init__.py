"""Governance: who may use which data on what terms (principals, grants, suspensions, quotas,
privacy budgets, job records), kept in the control store."""

from governance.clock import utc_now
from governance.errors import ControlError, NotFound
from governance.grants import LIVE, SUPERVISOR_PARTY, SYSTEM, Grant, GrantStatus
from governance.principals import Principal
from governance.store import ControlStore, migrate
from governance.suspensions import Suspension, SuspensionKind
from governance.tables import metadata

__all__ = [
    "LIVE",
    "SUPERVISOR_PARTY",
    "SYSTEM",
    "ControlError",
    "ControlStore",
    "Grant",
    "GrantStatus",
    "NotFound",
    "Principal",
    "Suspension",
    "SuspensionKind",
    "metadata",
    "migrate",
    "utc_now",
]
