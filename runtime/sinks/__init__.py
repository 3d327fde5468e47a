"""Sinks: where rendered audio goes (file, sound card, nothing)."""
