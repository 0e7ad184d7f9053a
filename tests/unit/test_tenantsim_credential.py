"""graph.credentials.TenantSimCredential: the local stack's token, fetched once for every caller."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graph.credentials import TenantSimCredential


class _TokenEndpoint:
    """A loopback token endpoint that answers slowly (as a busy simulator does) and counts what it issued."""

    def __init__(self) -> None:
        self.issued = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(0.05)
                endpoint.issued += 1
                body = json.dumps({"access_token": f"token-{endpoint.issued}", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def endpoint() -> Iterator[_TokenEndpoint]:
    served = _TokenEndpoint()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_callers_asking_at_once_share_one_fetch(endpoint: _TokenEndpoint) -> None:
    """A worker's first 64 messages ask for the token together: one request to the simulator, one token."""
    credential = TenantSimCredential(endpoint.url)

    async def ask_together() -> set[str]:
        tokens = await asyncio.gather(*(credential.get_token("scope") for _ in range(64)))
        return {t.token for t in tokens}

    assert asyncio.run(ask_together()) == {"token-1"}
    assert endpoint.issued == 1


def test_the_credential_works_again_in_a_later_event_loop(endpoint: _TokenEndpoint) -> None:
    """A command line run may call asyncio.run twice with one credential: the second loop is not refused, and
    the cached token is reused."""
    credential = TenantSimCredential(endpoint.url)
    first = asyncio.run(credential.get_token("scope"))
    second = asyncio.run(credential.get_token("scope"))
    assert first.token == second.token == "token-1"
    assert endpoint.issued == 1
