"""Persistence: SQLAlchemy Core over SQLite (WAL, default) or PostgreSQL. Nothing else touches SQL.

Imports control.model (to persist its dataclasses) and control.ports (the interfaces it implements).
"""
