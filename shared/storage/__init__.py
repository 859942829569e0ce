"""Persistent storage: SQLAlchemy models and repositories (SQLite, PostgreSQL) and Redis stores."""
