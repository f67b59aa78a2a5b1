"""Adapters: one real implementation per core port, plus fakes for unit tests and demo fallbacks."""
