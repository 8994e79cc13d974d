"""Embedded local AWS (moto-based) used by tests and local mode."""
