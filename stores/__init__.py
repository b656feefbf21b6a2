"""Stores: the shared SQLite database and what lives in it."""
