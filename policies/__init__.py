"""Authorisation policies in Rego and the engines that evaluate them."""

from .embedded import EmbeddedEngine
from .engine import (
    Decision,
    Obligations,
    PolicyEngine,
    PolicyError,
    PolicyInvalid,
    PolicySet,
    parse_decision,
)
from .opa import OpaEngine

__all__ = [
    "Decision",
    "EmbeddedEngine",
    "Obligations",
    "OpaEngine",
    "PolicyEngine",
    "PolicyError",
    "PolicyInvalid",
    "PolicySet",
    "parse_decision",
]
