"""Session fixtures for the real local servers. Nothing here runs unless a test asks for it.

``azurite`` starts Azurite alone (about a second); ``local_stack`` starts Azurite and tenantsim. Both
fail the session loudly when a server cannot start: a missing emulator is a broken build, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tenantsim.stack import LocalStack, StackError

# A pytest-xdist worker starts with COLUMNS=80 in its environment, and rich reads COLUMNS once, when the CLI's
# console is built at import: every table would then be 80 wide whatever width a test's CliRunner asks for.
# Without it the console reads the width at each print, as it does under a single pytest process.
os.environ.pop("COLUMNS", None)


def _start(stack: LocalStack) -> LocalStack:
    try:
        return stack.__enter__()
    except StackError as error:
        pytest.fail(f"the local stack could not start:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def azurite() -> Iterator[LocalStack]:
    """Azurite only: ``.tables_connection_string`` and ``.queues_connection_string``."""
    stack = _start(LocalStack(tenantsim=False))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """Azurite and tenantsim: ``.env`` holds the product's local settings."""
    stack = _start(LocalStack())
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def unique_prefix() -> str:
    """A table prefix (letters and digits) no other test uses, for isolation on a shared Azurite."""
    return "t" + uuid.uuid4().hex[:12]
