"""Durable row storage behind one small protocol (`Store`), with SQLite and in-memory backends."""
