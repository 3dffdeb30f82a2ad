"""Authorisation policies in Rego and the engines that evaluate them."""

from .embedded import EmbeddedEngine
from .engine import (
    DP_DEFAULT,
    Decision,
    Noise,
    Obligations,
    PolicyEngine,
    PolicyError,
    PolicyInvalid,
    PolicySet,
    parse_decision,
)
from .opa import OpaEngine

__all__ = [
    "DP_DEFAULT",
    "Decision",
    "Noise",
    "EmbeddedEngine",
    "Obligations",
    "OpaEngine",
    "PolicyEngine",
    "PolicyError",
    "PolicyInvalid",
    "PolicySet",
    "parse_decision",
]
