"""Logs never carry credentials: no frame locals in console tracebacks, credential keys redacted in every
renderer. Run in a subprocess: logging is configured once per process."""

from __future__ import annotations

import json
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


CONSOLE_SCRIPT = textwrap.dedent(
    """
    import io, sys
    from pathlib import Path

    import structlog
    from config.logging import ConsoleLogs, configure_console

    configure_console(ConsoleLogs(Path(sys.argv[1]), "WARNING"))
    log = structlog.get_logger("probe")
    log.info("quiet.info", user="ana@fabrikam.com")
    log.warning("loud.warning", access_token="LEAKED-TOKEN")
    swapped, real = io.StringIO(), sys.stderr
    sys.stderr = swapped  # what rich does while it draws a progress bar
    log.warning("while.swapped")
    sys.stderr = real
    print("SWAPPED:" + swapped.getvalue())
    """
)


def test_console_mode_keeps_info_in_the_file_and_shows_warnings_for_a_person(tmp_path):
    """The command line's split: info only in the log file (JSON lines), warnings on the terminal rendered for
    a person, credentials redacted in both, and the terminal line follows stderr when it is swapped."""
    log_file = tmp_path / "logs" / "cli.log"
    run = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, str(log_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert "loud.warning" in run.stderr and "quiet.info" not in run.stderr
    assert not run.stderr.lstrip().startswith("{")  # rendered for a person, not JSON
    assert "while.swapped" in run.stdout.split("SWAPPED:", 1)[1] and "while.swapped" not in run.stderr
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["event"], e["level"]) for e in lines] == [
        ("quiet.info", "info"),
        ("loud.warning", "warning"),
        ("while.swapped", "warning"),
    ]
    assert "LEAKED" not in run.stderr + log_file.read_text()
