"""Builds the connector's services from settings: the one place the sign-up core meets its adapters.

Built lazily and once per worker process (``signup_services()``), never at import, so indexing the
function app stays cheap and the HTTP client is reused across invocations.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import httpx

from adapters.signing_keys import JwksSigningKeys
from config.desired_state import DesiredState, load_desired_state
from config.signup import AUTHENTICATION_EVENTS_APP_ID, SignUpSettings, load_signup_settings
from lifecycle.clock import SystemClock
from lifecycle.ports import Clock
from lifecycle.signup.auth import BasicCredentials, BearerValidator
from lifecycle.signup.http import SignUpServices
from lifecycle.signup.rules import SignUpRules

_services: SignUpServices | None = None


def build_signup_services(
    settings: SignUpSettings,
    state: DesiredState,
    *,
    client: httpx.AsyncClient,
    clock: Clock,
) -> SignUpServices:
    keys = JwksSigningKeys(
        settings.metadata_url,
        client=client,
        clock=clock,
        ttl=timedelta(seconds=settings.keys_ttl_seconds),
        refetch_interval=timedelta(seconds=settings.refetch_interval_seconds),
    )
    bearer = BearerValidator(
        keys,
        issuers=settings.issuers,
        audiences=settings.audiences,
        authorized_party=AUTHENTICATION_EVENTS_APP_ID,
        clock=clock,
        leeway=timedelta(seconds=settings.clock_skew_seconds),
    )
    basic = None
    if settings.basic_username is not None and settings.basic_password is not None:
        basic = BasicCredentials(settings.basic_username, settings.basic_password.get_secret_value())
    secret = settings.invitation_code_secret
    rules = SignUpRules.from_desired_state(state, secret.get_secret_value().encode() if secret else None)
    return SignUpServices(rules=rules, bearer=bearer, basic=basic, max_body_bytes=settings.max_body_bytes)


def signup_services(environ: Mapping[str, str] | None = None) -> SignUpServices:
    """The process-wide services, built on first use from the environment."""
    global _services
    if _services is None:
        settings = load_signup_settings(environ)
        state = load_desired_state(settings.desired_state_path)
        _services = build_signup_services(settings, state, client=httpx.AsyncClient(), clock=SystemClock())
    return _services
