"""dtm: a TODO list on a small distributed key-value store."""

__version__ = "0.1.0"
