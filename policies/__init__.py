"""Authorisation policies in Rego and the engines that evaluate them."""

from .embedded import EmbeddedEngine
from .engine import Decision, Obligations, PolicyEngine, PolicyError, parse_decision

__all__ = [
    "Decision",
    "EmbeddedEngine",
    "Obligations",
    "PolicyEngine",
    "PolicyError",
    "parse_decision",
]
