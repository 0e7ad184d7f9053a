"""Adapters at the edge: Table Storage state, queue transports, and their in-memory fakes.

Only app.bootstrap (and tests) import from here; the core sees the ports in lifecycle.ports.
"""
