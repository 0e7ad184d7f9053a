"""Where the Graph token may go, and which links the product follows.

The managed identity's token carries every Graph permission the app was granted, so it is attached only to
requests for the configured Graph origin (scheme, host and port of ``LIFECYCLE_GRAPH_BASE_URL``), and a link
the product follows (a stored sweep cursor, an ``@odata.nextLink``) must point at that origin, under the
version root it came from, with nothing ambiguous in it. Anything else is refused before a request is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

from lifecycle.errors import UntrustedLinkError

_DEFAULT_PORTS = {"https": 443, "http": 80}
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class GraphOrigin:
    """Scheme, host and port of the configured Graph base URL, and its version root (``/v1.0``)."""

    scheme: str
    host: str
    port: int
    root: str

    @classmethod
    def of(cls, base_url: str) -> GraphOrigin:
        parts = urlsplit(base_url.rstrip("/"))
        if not parts.scheme or not parts.hostname:
            raise ValueError(f"not an absolute Graph URL: {base_url!r}")
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        return cls(parts.scheme.lower(), parts.hostname.lower(), port, parts.path.rstrip("/"))

    def owns(self, url: str) -> bool:
        """True when ``url`` is on this origin: same scheme, host and port, no user information."""
        try:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        except ValueError:
            return False
        return (
            parts.scheme.lower() == self.scheme
            and (parts.hostname or "").lower() == self.host
            and port == self.port
            and parts.username is None
            and parts.password is None
        )

    def check_link(self, link: str, *, root: str | None = None, what: str = "link") -> str:
        """``link`` if it is safe to follow with the token: on this origin, under ``root`` (default: the
        configured version root), without dot segments, backslashes, whitespace or control characters
        (raw or percent-encoded). Raises UntrustedLinkError otherwise; no request is made."""
        expected = (root if root is not None else self.root).rstrip("/")
        reason = self._problem(link, expected)
        if reason:
            raise UntrustedLinkError(
                f"refused to follow the {what} {_shown(link)}: {reason}; "
                f"only links under {self.scheme}://{self._netloc()}{expected}/ are followed"
            )
        return link

    def _problem(self, link: str, root: str) -> str | None:
        if not isinstance(link, str) or not link:
            return "it is empty"
        if _UNSAFE_CHARACTERS.search(link):
            return "it holds whitespace, control characters or backslashes"
        if not self.owns(link):
            return "it points at another scheme, host or port (or carries user information)"
        parts = urlsplit(link)
        if parts.fragment:
            return "it carries a fragment"
        decoded = unquote(parts.path)
        if _UNSAFE_CHARACTERS.search(decoded) or any(s in (".", "..") for s in decoded.split("/")):
            return "its path holds dot segments or encoded separators"
        if not parts.path.startswith(root + "/"):
            return f"its path is not under {root}/"
        return None

    def _netloc(self) -> str:
        default = _DEFAULT_PORTS.get(self.scheme)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _shown(link: object) -> str:
    """The link for a message: the query (a skip token) left out, at most 200 characters."""
    text = str(link).split("?", 1)[0]
    return repr(text[:200])


class OriginBoundTokenProvider(AccessTokenProvider):
    """Asks ``inner`` for a token only for URLs on the Graph origin; refuses any other URL outright.

    kiota's own allowed-hosts check compares host names only and answers "no token" (the request still
    goes out); this one compares scheme, host and port and stops the request.
    """

    def __init__(self, inner: AccessTokenProvider, origin: GraphOrigin) -> None:
        self._inner = inner
        self._origin = origin

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        if not self._origin.owns(uri):
            raise UntrustedLinkError(
                f"refused to send the Graph token to {_shown(uri)}: not the configured Graph origin"
            )
        return await self._inner.get_authorization_token(uri, additional_authentication_context or {})

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._inner.get_allowed_hosts_validator()
