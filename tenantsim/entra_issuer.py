"""A simulator of Entra's token issuance for the sign-up connector and the admin endpoint: RSA keys, the OpenID
configuration and JWKS the tenant's authority publishes, tokens as the authentication events service sends them,
access tokens for a web API as a client obtains them for a person, and the request bodies of a custom
authentication extension and of an API connector. For tests, benchmarks and local runs, never production code;
it is served through an httpx transport, so nothing leaves the process.

Sources (contract/entra-token-issuer.md): the metadata and keys URLs, entra-docs
docs/identity-platform/v2-protocols-oidc.md; the caller's `azp`/`appid` and the workforce issuer, entra-docs
docs/identity-platform/custom-extension-overview.md ("Protect your REST API"); the claims of an access token for
a web API, https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference; the extension
request body, entra-docs docs/identity-platform/custom-extension-onattributecollectionsubmit-reference.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The app id of the authentication events service that calls custom authentication extensions: `azp` in v2
# tokens, `appid` in v1 (custom-extension-overview.md). The product keeps its own copy in config.signup; the
# simulator states Entra's value independently, so a wrong product value fails the tests.
AUTHENTICATION_EVENTS_APP_ID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
TEST_TENANT_ID = "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13"
TEST_AUDIENCE = "c0ffee00-1234-4abc-9def-0123456789ab"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class LocalTokenIssuer:
    tenant_id: str = TEST_TENANT_ID
    audience: str = TEST_AUDIENCE
    authority: str = "https://login.microsoftonline.com"
    private_keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failing: bool = False

    @property
    def issuer(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0"

    @property
    def metadata_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/discovery/v2.0/keys"

    def add_key(self, kid: str | None = None, *, publish: bool = True) -> str:
        kid = kid or uuid.uuid4().hex
        self.private_keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)
        return kid

    def public_pem(self, kid: str) -> bytes:
        return (
            self.private_keys[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            numbers = self.private_keys[kid].public_key().public_numbers()
            keys.append(
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": kid,
                    "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": b64url(numbers.e.to_bytes(3, "big")),
                }
            )
        return {"keys": keys}

    def claims(self, now: datetime, **overrides: Any) -> dict[str, Any]:
        base = {
            "aud": self.audience,
            "iss": self.issuer,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(hours=1)).timestamp()),
            "azp": AUTHENTICATION_EVENTS_APP_ID,
            "azpacr": "1",
            "oid": "5b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b",
            "sub": "5b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b",
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        base.update(overrides)
        return {key: value for key, value in base.items() if value is not None}

    def mint(self, now: datetime, *, kid: str | None = None, **overrides: Any) -> str:
        """An RS256 token signed by ``kid`` (default: the first key), claims overridable (None drops one)."""
        kid = kid or next(iter(self.private_keys))
        return jwt.encode(self.claims(now, **overrides), self.private_keys[kid], "RS256", headers={"kid": kid})

    def access_token(
        self,
        now: datetime,
        *,
        api: str,
        client_id: str,
        oid: str,
        name: str | None,
        roles: tuple[str, ...] = (),
        scopes: tuple[str, ...] = ("user_impersonation",),
        version: str = "2.0",
        kid: str | None = None,
        **overrides: Any,
    ) -> str:
        """An access token for a web API of this tenant, as a client (``client_id``) obtains it for a person, or for
        itself when ``scopes`` is empty (no ``scp``). v2: the v2 issuer, ``azp``, ``preferred_username``; v1: the
        ``sts.windows.net`` issuer, ``appid``, ``upn``. ``api`` is the audience: the API's application id for v2
        tokens, its App ID URI for v1 (access-token-claims-reference)."""
        claims: dict[str, Any] = {"aud": api, "oid": oid, "sub": f"pairwise-{oid}", "ver": version, "azpacr": None}
        if version == "2.0":
            claims |= {"azp": client_id, "preferred_username": name}
        else:
            claims |= {"iss": f"https://sts.windows.net/{self.tenant_id}/", "azp": None, "appid": client_id}
            claims |= {"upn": name, "unique_name": name}
        if scopes:
            claims["scp"] = " ".join(scopes)
        else:
            claims |= {"preferred_username": None, "upn": None, "unique_name": None, "idtyp": "app"}
        if roles:
            claims["roles"] = list(roles)
        return self.mint(now, kid=kid, **(claims | overrides))

    def forge(self, header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
        """A token assembled by hand, for the attacks a library would refuse to produce."""
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64url(signature)}"

    def forge_hs256_with_public_key(self, now: datetime, kid: str) -> str:
        """The algorithm-confusion attack: HS256 keyed with the published RSA public key."""
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        unsigned = self.forge(header, self.claims(now)).rsplit(".", 1)[0]
        signature = hmac.new(self.public_pem(kid), unsigned.encode(), hashlib.sha256).digest()
        return f"{unsigned}.{b64url(signature)}"

    def transport(self) -> httpx.MockTransport:
        def serve(request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            self.requests.append(url)
            if self.failing:
                return httpx.Response(503, json={"error": "temporarily_unavailable"})
            if url == self.metadata_url:
                return httpx.Response(200, json={"issuer": self.issuer, "jwks_uri": self.jwks_url})
            if url == self.jwks_url:
                return httpx.Response(200, json=self.jwks())
            return httpx.Response(404, json={"error": "not_found"})

        return httpx.MockTransport(serve)


def extension_body(
    email: str | None,
    attributes: dict[str, Any] | None = None,
    *,
    event: str = "attributeCollectionSubmit",
    correlation_id: str = "00000000-0000-4000-8000-000000000001",
) -> dict[str, Any]:
    """A custom authentication extension request as Entra sends it (string attributes)."""
    data_type = (
        "onAttributeCollectionStartCalloutData"
        if event.endswith("Start")
        else ("onAttributeCollectionSubmitCalloutData")
    )
    wrapped = {
        name: {
            "@odata.type": "microsoft.graph.stringDirectoryAttributeValue",
            "value": value,
            "attributeType": "builtIn",
        }
        for name, value in (attributes or {}).items()
    }
    identities = (
        [{"signInType": "email", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": email}] if email else []
    )
    return {
        "type": f"microsoft.graph.authenticationEvent.{event}",
        "source": f"/tenants/{TEST_TENANT_ID}/applications/{TEST_AUDIENCE}",
        "data": {
            "@odata.type": f"microsoft.graph.{data_type}",
            "tenantId": TEST_TENANT_ID,
            "authenticationEventListenerId": "10000000-0000-0000-0000-000000000001",
            "customAuthenticationExtensionId": "10000000-0000-0000-0000-000000000002",
            "authenticationContext": {
                "correlationId": correlation_id,
                "client": {"ip": "203.0.113.7", "locale": "en-us", "market": "en-us"},
                "protocol": "OAUTH2.0",
            },
            "userSignUpInfo": {"attributes": wrapped, "identities": identities},
        },
    }


def connector_body(email: str | None, step: str = "PostAttributeCollection", **claims: Any) -> dict[str, Any]:
    """An API connector request as B2B self-service sign-up sends it (flat claims)."""
    body: dict[str, Any] = {
        "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "0123456789"}],
        "displayName": "Sam Example",
        "step": step,
        "client_id": TEST_AUDIENCE,
        "ui_locales": "en-US",
        **claims,
    }
    if email is not None:
        body["email"] = email
    return body
