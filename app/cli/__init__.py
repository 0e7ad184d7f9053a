"""The command line: `python -m lifecycle <command>` (Typer)."""
