"""Durable store: one SQLite database driven by one worker thread.

Repositories are plain functions that take the sqlite3 connection first and run in
the worker thread (``await db.run(users.get_by_username, "alice")``).
"""

from authly.store.db import Database, open_database

__all__ = ["Database", "open_database"]
