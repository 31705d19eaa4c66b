"""Faults tests."""
