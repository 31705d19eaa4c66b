"""Helpers of the tests: real processes, harnesses, corpora, documents."""
