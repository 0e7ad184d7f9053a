"""The product's own exceptions. Adapters translate SDK and HTTP errors into these."""

from __future__ import annotations

# The configuration's errors, re-exported: callers of the core catch them from here.
from config.errors import ConfigError as ConfigError
from config.errors import DesiredStateError as DesiredStateError
from config.errors import SettingsError as SettingsError


class LifecycleError(Exception):
    """Base class for every error the product raises on purpose."""


class GraphError(LifecycleError):
    """A Microsoft Graph call failed. ``code`` is Graph's ``error.code``; never branch on the message."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id

    def describe(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "message": str(self),
            "status": self.status,
            "code": self.code,
            "requestId": self.request_id,
        }


class TransientGraphError(GraphError):
    """Worth retrying later: 5xx, timeouts, connection resets. ``retry_after`` is Graph's hint in seconds, if
    it sent one (a 503 may carry Retry-After as a 429 does)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.retry_after = retry_after


class ThrottledError(TransientGraphError):
    """429 from Graph. ``retry_after`` is in seconds (Graph may send fractions)."""

    retry_after: float

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id, retry_after=retry_after)


class NotFoundError(GraphError):
    """404 Request_ResourceNotFound (may also mean "not replicated yet" right after a create)."""


class PermissionDeniedError(GraphError):
    """403 Authorization_RequestDenied: the app lacks an application permission."""


class ConflictError(GraphError):
    """409, or a Graph answer that means the object already exists in a conflicting form."""


class BadRequestError(GraphError):
    """400 the service will answer the same way every time: not worth a retry."""


class AuthenticationError(GraphError):
    """401: the token was missing, expired or not accepted."""


class UntrustedLinkError(GraphError):
    """A URL the product was about to call (a stored page link, a next link) or attach the Graph token to is
    not under the configured Graph base URL. Nothing was sent; retrying will not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="untrusted-link")


class StateConflictError(LifecycleError):
    """An optimistic-concurrency check (ETag) failed: someone else wrote the row first."""


class InputError(LifecycleError):
    """A file the operator gave cannot be read as what the command expects (malformed JSON, a CSV with the
    wrong delimiter or columns). The message names the file and where it went wrong."""


class ReadOnlySessionError(LifecycleError):
    """A request that could change the tenant, made from a session on an operator's own sign-in, which only
    reads. Refused before it leaves the process, so nothing is half done."""
