"""Veil gateway: the HTTP surface (FastAPI), authentication, CLI and metrics."""
