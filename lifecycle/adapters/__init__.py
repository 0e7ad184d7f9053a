"""Adapters at the edge: Table Storage state, queue transports, and their in-memory fakes.

Only lifecycle.bootstrap (and tests) import from here; the core sees the ports in lifecycle.ports.
"""
