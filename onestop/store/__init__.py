"""Persistence: SQLAlchemy Core tables and the transactions the engine runs in."""

from .repository import Store, Tx, normalise_url

__all__ = ["Store", "Tx", "normalise_url"]
