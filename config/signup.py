"""Settings of the sign-up connector (the HTTP endpoint Entra calls during self-service sign-up).

Read from the environment like config/settings.py, but on their own: the connector needs none of the
storage or queue settings, and the rest of the app needs none of these. Every bad setting is named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from config.errors import SettingsError
from config.settings import SAMPLE_DESIRED_STATE, describe_settings_error

# The "Azure AD authentication events" service that calls custom authentication extensions; its tokens
# carry this app id in azp (v2 tokens) or appid (v1 tokens). Source: Microsoft Entra docs,
# identity-platform/custom-extension-overview "Protect your REST API".
AUTHENTICATION_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


class SignUpSettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    tenant_id: str = Field(alias="LIFECYCLE_SIGNUP_TENANT_ID", pattern=GUID_PATTERN)
    audiences: CommaList = Field(alias="LIFECYCLE_SIGNUP_AUDIENCES", min_length=1)
    # External (CIAM) tenants issue from https://<name>.ciamlogin.com/<tid>/v2.0; give <name> here.
    ciam_domain: str | None = Field(None, alias="LIFECYCLE_SIGNUP_CIAM_DOMAIN", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    extra_issuers: CommaList = Field((), alias="LIFECYCLE_SIGNUP_ISSUERS")
    oidc_metadata_url: str | None = Field(None, alias="LIFECYCLE_SIGNUP_OIDC_METADATA_URL")
    keys_ttl_seconds: int = Field(12 * 3600, alias="LIFECYCLE_SIGNUP_KEYS_TTL_SECONDS", ge=60, le=7 * 86400)
    # An unknown kid triggers at most one refetch per this interval, so junk tokens cannot hammer Entra.
    refetch_interval_seconds: int = Field(300, alias="LIFECYCLE_SIGNUP_KEYS_REFETCH_SECONDS", ge=1, le=86400)
    clock_skew_seconds: int = Field(120, alias="LIFECYCLE_SIGNUP_CLOCK_SKEW_SECONDS", ge=0, le=600)
    basic_username: str | None = Field(None, alias="LIFECYCLE_SIGNUP_BASIC_USERNAME", min_length=1)
    basic_password: SecretStr | None = Field(None, alias="LIFECYCLE_SIGNUP_BASIC_PASSWORD")
    invitation_code_secret: SecretStr | None = Field(None, alias="LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET")
    max_body_bytes: int = Field(64 * 1024, alias="LIFECYCLE_SIGNUP_MAX_BODY_BYTES", ge=1024, le=1024 * 1024)
    desired_state_path: Path = Field(SAMPLE_DESIRED_STATE, alias="LIFECYCLE_DESIRED_STATE")

    @field_validator("extra_issuers")
    @classmethod
    def _https_issuers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [issuer for issuer in value if not issuer.startswith("https://")]
        if bad:
            raise ValueError(f"issuers must be https URLs: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SignUpSettings:
        problems: list[str] = []
        if (self.basic_username is None) != (self.basic_password is None):
            problems.append("LIFECYCLE_SIGNUP_BASIC_USERNAME / LIFECYCLE_SIGNUP_BASIC_PASSWORD: set both or neither")
        if self.basic_password is not None and len(self.basic_password.get_secret_value()) < 16:
            problems.append("LIFECYCLE_SIGNUP_BASIC_PASSWORD: must be at least 16 characters")
        secret = self.invitation_code_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            problems.append("LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET: must be at least 32 characters")
        if self.oidc_metadata_url is not None and not self.oidc_metadata_url.startswith(
            ("https://", "http://127.0.0.1", "http://localhost")
        ):
            problems.append("LIFECYCLE_SIGNUP_OIDC_METADATA_URL: must be https (or a loopback URL)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def issuers(self) -> tuple[str, ...]:
        """The accepted ``iss`` values: the workforce form, the external-tenant form if configured, extras."""
        found = [f"https://login.microsoftonline.com/{self.tenant_id}/v2.0"]
        if self.ciam_domain:
            found.append(f"https://{self.ciam_domain}.ciamlogin.com/{self.tenant_id}/v2.0")
        found.extend(self.extra_issuers)
        return tuple(dict.fromkeys(found))

    @property
    def metadata_url(self) -> str:
        """OIDC discovery document of the tenant whose tokens we accept (external tenants use ciamlogin)."""
        if self.oidc_metadata_url:
            return self.oidc_metadata_url
        if self.ciam_domain:
            authority = f"https://{self.ciam_domain}.ciamlogin.com/{self.tenant_id}"
        else:
            authority = f"https://login.microsoftonline.com/{self.tenant_id}"
        return f"{authority}/v2.0/.well-known/openid-configuration"

    @property
    def basic_auth_enabled(self) -> bool:
        return self.basic_username is not None and self.basic_password is not None


def load_signup_settings(environ: Mapping[str, str] | None = None) -> SignUpSettings:
    """Build the connector settings from ``environ`` (default: the process environment) or raise."""
    source = dict(os.environ if environ is None else environ)
    try:
        return SignUpSettings.model_validate(source)
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc, SignUpSettings, "invalid sign-up settings")) from None
