"""Differential privacy at the level of the privacy unit: bounded contributions, OpenDP noise."""
