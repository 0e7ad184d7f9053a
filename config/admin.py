"""Settings of the admin endpoint (``POST /api/admin/{plan|apply}`` on the jobs app) and of the command line's
remote mode that calls it.

The endpoint accepts an Entra access token for the product's own app registration (its App ID URI) from the
workforce tenant, carrying the operator app role. Which token version arrives depends on the registration's
``api.requestedAccessTokenVersion`` (v1 when unset): a v1 token's ``iss`` is ``https://sts.windows.net/{tid}/``
and its ``aud`` the App ID URI; a v2 token's ``iss`` is ``https://login.microsoftonline.com/{tid}/v2.0`` and its
``aud`` the application (client) id. Both are accepted for the one tenant, so the audiences list names both
(https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from config.errors import SettingsError
from config.settings import describe_settings_error
from config.signup import GUID_PATTERN, CommaList

DEFAULT_ROLE = "Lifecycle.Operator"
ADMIN_URL_SETTING = "LIFECYCLE_ADMIN_URL"
ADMIN_SCOPE_SETTING = "LIFECYCLE_ADMIN_SCOPE"
ADMIN_TOKEN_SETTING = "LIFECYCLE_ADMIN_TOKEN"


class AdminSettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    tenant_id: str = Field(alias="LIFECYCLE_ADMIN_TENANT_ID", pattern=GUID_PATTERN)
    # The App ID URI (v1 tokens) and the application (client) id (v2 tokens) of the product's registration.
    audiences: CommaList = Field(alias="LIFECYCLE_ADMIN_AUDIENCES", min_length=1)
    role: str = Field(DEFAULT_ROLE, alias="LIFECYCLE_ADMIN_ROLE", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
    oidc_metadata_url: str | None = Field(None, alias="LIFECYCLE_ADMIN_OIDC_METADATA_URL")
    keys_ttl_seconds: int = Field(12 * 3600, alias="LIFECYCLE_ADMIN_KEYS_TTL_SECONDS", ge=60, le=7 * 86400)
    refetch_interval_seconds: int = Field(300, alias="LIFECYCLE_ADMIN_KEYS_REFETCH_SECONDS", ge=1, le=86400)
    clock_skew_seconds: int = Field(120, alias="LIFECYCLE_ADMIN_CLOCK_SKEW_SECONDS", ge=0, le=600)
    max_body_bytes: int = Field(16 * 1024, alias="LIFECYCLE_ADMIN_MAX_BODY_BYTES", ge=1024, le=1024 * 1024)

    @field_validator("oidc_metadata_url")
    @classmethod
    def _https_metadata(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be https (or a loopback URL)")
        return value

    @property
    def issuers(self) -> tuple[str, ...]:
        """The tenant's v2 and v1 access-token issuers."""
        return (
            f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
            f"https://sts.windows.net/{self.tenant_id}/",
        )

    @property
    def metadata_url(self) -> str:
        """The tenant's OIDC discovery document; its key set signs v1 and v2 tokens alike."""
        if self.oidc_metadata_url:
            return self.oidc_metadata_url
        return f"https://login.microsoftonline.com/{self.tenant_id}/v2.0/.well-known/openid-configuration"


def load_admin_settings(environ: Mapping[str, str] | None = None) -> AdminSettings:
    """The endpoint's settings from ``environ`` (default: the process environment), or a SettingsError."""
    source = dict(os.environ if environ is None else environ)
    try:
        return AdminSettings.model_validate(source)
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc, AdminSettings, "invalid admin endpoint settings")) from None
