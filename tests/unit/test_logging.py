"""Logs never carry credentials: no frame locals in console tracebacks, credential keys redacted in every
renderer. Run in a subprocess: logging is configured once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from config.settings import ROOT

SCRIPT = textwrap.dedent(
    """
    import structlog
    from config.logging import configure_logging

    configure_logging(json={json}, level="INFO")
    log = structlog.get_logger("probe")

    def call_graph(url):
        headers = {{"Authorization": "Bearer eyJ0eXAi.LEAKED-IN-LOCALS"}}
        raise RuntimeError("Graph refused")

    try:
        call_graph("https://graph.microsoft.com/v1.0/users")
    except RuntimeError:
        log.exception("graph.failed")
    log.info(
        "request.seen",
        headers={{"Authorization": "Bearer LEAKED-HEADER", "Accept": "application/json"}},
        access_token="LEAKED-TOKEN",
        settings={{"nested": {{"client_secret": "LEAKED-SECRET"}}}},
        forwarded="Bearer LEAKED-VALUE",
        user="ana@fabrikam.com",
    )
    """
)


@pytest.mark.parametrize("json", [False, True], ids=["console", "json"])
def test_no_renderer_prints_frame_locals_or_credentials(json):
    """An exception whose frame holds an Authorization header, and an event with credential-like keys at any
    depth: the output keeps the event and the harmless fields, never the credentials."""
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(json=json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    output = run.stdout + run.stderr
    assert "graph.failed" in output and "Graph refused" in output and "request.seen" in output
    assert "ana@fabrikam.com" in output and "application/json" in output
    assert "LEAKED" not in output, output
