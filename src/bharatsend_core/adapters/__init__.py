"""Adapters: implementations of the ports (memory, SQLAlchemy, SMPP, HTTP)."""
