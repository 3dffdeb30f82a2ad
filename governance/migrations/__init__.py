"""Alembic migrations of the control store."""
