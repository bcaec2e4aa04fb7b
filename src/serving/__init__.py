"""Serving trained methods to people: SDK engine, command line, web portal (docs/serving.md)."""
