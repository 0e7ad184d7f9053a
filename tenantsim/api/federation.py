"""SAML/WS-Fed direct federation for guests (/directory/federationConfigurations, graph-contract.md section 10).

The collection is addressed through the type-cast segment ``microsoft.graph.samlOrWsFedExternalDomainFederation``
(the list doc also shows the shorter ``graph.`` prefix; both are served). A configuration for one domain is
found with ``$filter=domains/any(x: x/id eq 'domain')`` (samlorwsfedexternaldomainfederation-get.md); the
list and get examples show each configuration with its ``domains``, and they are also served through their
own collection. ``$expand`` is documented nowhere for this type: refused unless the ``federationExpand`` knob
says to ignore it. A domain that an Entra tenant verifies cannot be federated, and a domain belongs to at
most one configuration.
"""

from __future__ import annotations

import copy
import re
import uuid
import weakref
from typing import Any

from tenantsim.directory import Directory
from tenantsim.errors import GraphError, bad_request, found
from tenantsim.runtime import Call, GraphResponse

TYPE = "microsoft.graph.samlOrWsFedExternalDomainFederation"
PROTOCOLS = frozenset({"saml", "wsFed"})
PROVIDER_FIELDS = (
    "issuerUri",
    "metadataExchangeUri",
    "passiveSignInUri",
    "preferredAuthenticationProtocol",
    "signingCertificate",
)
WRITABLE = frozenset({"displayName", *PROVIDER_FIELDS})
REQUIRED = ("displayName", "issuerUri", "passiveSignInUri", "preferredAuthenticationProtocol", "signingCertificate")
_DOMAIN_FILTER = re.compile(r"^domains/any\((\w+):\s*\1/id eq '((?:[^']|'')*)'\)$")

_configs: weakref.WeakKeyDictionary[Directory, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def configurations_of(directory: Directory) -> dict[str, dict[str, Any]]:
    if directory not in _configs:
        _configs[directory] = {}
    return _configs[directory]


def _domain_entity(domain: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.externalDomainName", "id": domain}


def _view(config: dict[str, Any], with_domains: bool) -> dict[str, Any]:
    body = {"@odata.type": f"#{TYPE}", **{k: v for k, v in config.items() if k != "domains"}}
    if with_domains:
        body["domains"] = [_domain_entity(d) for d in config["domains"]]
    return body


def _listed_with_domains(call: Call) -> bool:
    """Whether a read answers each configuration with its domains: as the examples show, unless the
    ``federationDomainsInline`` knob says otherwise. ``$expand`` is not documented here."""
    if "$expand" in call.request.query and call.sim.config.federation_expand == "refuse":
        raise GraphError(400, "Request_UnsupportedQuery", "$expand is not supported on federation configurations.")
    return call.sim.config.federation_domains_inline


def _config(call: Call, config_id: str) -> dict[str, Any]:
    return found(configurations_of(call.sim.directory), config_id)


def _check_domain(call: Call, domain: Any, ignore: str | None = None) -> str:
    if not isinstance(domain, str) or "." not in domain:
        raise bad_request("Each domain needs an 'id' holding a domain name.")
    domain = domain.lower()
    info = call.sim.directory.domains.get(domain) or {}
    if info.get("identityProvider") == "AzureAD":
        raise bad_request(f"Domain '{domain}' is verified by an Azure AD tenant and cannot be federated.")
    for config_id, config in configurations_of(call.sim.directory).items():
        if config_id != ignore and domain in config["domains"]:
            raise GraphError(
                409, "Conflict", f"Domain '{domain}' already belongs to federation configuration '{config_id}'."
            )
    return domain


def _check_fields(body: Any, required: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    fields = {k: v for k, v in body.items() if k not in {"@odata.type", "domains", "id"}}
    unknown = sorted(set(fields) - WRITABLE)
    if unknown:
        raise bad_request(f"Invalid property '{unknown[0]}' for resource 'samlOrWsFedExternalDomainFederation'.")
    missing = [name for name in REQUIRED if required and not fields.get(name)]
    if missing:
        raise bad_request(f"Required properties are missing: {', '.join(missing)}.")
    protocol = fields.get("preferredAuthenticationProtocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise bad_request("'preferredAuthenticationProtocol' must be saml or wsFed.")
    return fields


def list_configurations(call: Call) -> GraphResponse:
    call.require("federation.read")
    query = call.request.query
    configs = list(configurations_of(call.sim.directory).values())
    if "$filter" in query:
        found = _DOMAIN_FILTER.match(query["$filter"].strip())
        if found is None:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported filter on federation configurations.")
        domain = found.group(2).replace("''", "'").lower()
        configs = [c for c in configs if domain in c["domains"]]
    with_domains = _listed_with_domains(call)
    return GraphResponse(
        200,
        {
            "@odata.context": call.context_url(f"directory/federationConfigurations/{TYPE}"),
            "value": [_view(c, with_domains) for c in configs],
        },
    )


def create_configuration(call: Call) -> GraphResponse:
    call.require("federation.write")
    fields = _check_fields(call.request.body, required=True)
    raw_domains = call.request.body.get("domains") or []
    if not isinstance(raw_domains, list) or not raw_domains:
        raise bad_request("At least one domain is required.")
    domains = [_check_domain(call, entry.get("id") if isinstance(entry, dict) else None) for entry in raw_domains]
    config = {"id": str(uuid.uuid4()), **{name: fields.get(name) for name in ("displayName", *PROVIDER_FIELDS)}}
    config["domains"] = sorted(set(domains))
    configurations_of(call.sim.directory)[config["id"]] = config
    body = {"@odata.context": call.context_url("directory/federationConfigurations/$entity")}
    body.update(_view(config, with_domains=False))
    return GraphResponse(201, body)


def get_configuration(call: Call, config_id: str) -> GraphResponse:
    call.require("federation.read")
    body = {"@odata.context": call.context_url("directory/federationConfigurations/$entity")}
    body.update(_view(_config(call, config_id), with_domains=_listed_with_domains(call)))
    return GraphResponse(200, body)


def update_configuration(call: Call, config_id: str) -> GraphResponse:
    call.require("federation.write")
    config = _config(call, config_id)
    config.update(copy.deepcopy(_check_fields(call.request.body, required=False)))
    # The update page answers 200 with the updated configuration, its domains included.
    body = {"@odata.context": call.context_url("directory/federationConfigurations/$entity")}
    body.update(_view(config, with_domains=True))
    return GraphResponse(200, body)


def delete_configuration(call: Call, config_id: str) -> GraphResponse:
    call.require("federation.write")
    _config(call, config_id)
    del configurations_of(call.sim.directory)[config_id]
    return GraphResponse(204)


def list_domains(call: Call, config_id: str) -> GraphResponse:
    call.require("federation.read")
    config = _config(call, config_id)
    return GraphResponse(
        200,
        {
            "@odata.context": call.context_url(f"directory/federationConfigurations('{config_id}')/{TYPE}/domains"),
            "value": [_domain_entity(d) for d in config["domains"]],
        },
    )


def add_domain(call: Call, config_id: str) -> GraphResponse:
    call.require("federation.write")
    config = _config(call, config_id)
    body = call.request.body
    domain = _check_domain(call, body.get("id") if isinstance(body, dict) else None, ignore=config_id)
    if domain in config["domains"]:
        raise GraphError(409, "Conflict", f"Domain '{domain}' is already part of this configuration.")
    config["domains"] = sorted({*config["domains"], domain})
    entity = {"@odata.context": call.context_url("directory/federationConfigurations/domains/$entity")}
    entity.update(_domain_entity(domain))
    return GraphResponse(201, entity)
