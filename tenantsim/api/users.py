"""/users, /users/{id}, /users/$count, revokeSignInSessions, directory/deletedItems, group members."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from tenantsim.directory import UserRecord
from tenantsim.errors import GraphError, bad_request, denied, found, not_found, unsupported_query
from tenantsim.odata_filter import AnyLambda, BoolOp, Comparison, InList, Node, compile_filter, parse_filter
from tenantsim.runtime import Call, GraphResponse, Simulator

DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
# Properties Graph serves only on a single user: selecting them on the collection is a 501.
SINGLE_ENTITY_ONLY = frozenset(
    [
        "aboutMe",
        "birthday",
        "hireDate",
        "interests",
        "mySite",
        "pastProjects",
        "preferredName",
        "responsibilities",
        "schools",
        "skills",
        "mailboxSettings",
    ]
)
SELECTABLE = (
    frozenset(
        DEFAULT_SELECT
        + tuple(
            [
                "accountEnabled",
                "userType",
                "createdDateTime",
                "creationType",
                "externalUserState",
                "externalUserStateChangeDateTime",
                "identities",
                "otherMails",
                "proxyAddresses",
                "signInActivity",
                "signInSessionsValidFromDateTime",
                "employeeLeaveDateTime",
                "deletedDateTime",
                "companyName",
                "department",
                "mailNickname",
                "city",
                "country",
                "usageLocation",
                "employeeId",
                "employeeType",
                "ageGroup",
                "showInAddressList",
                "onPremisesSyncEnabled",
            ]
        )
    )
    | SINGLE_ENTITY_ONLY
)
FILTERABLE: dict[str, str] = {
    "id": "string",
    "userType": "string",
    "mail": "string",
    "userPrincipalName": "string",
    "displayName": "string",
    "givenName": "string",
    "surname": "string",
    "jobTitle": "string",
    "companyName": "string",
    "department": "string",
    "creationType": "string",
    "externalUserState": "string",
    "accountEnabled": "bool",
    "createdDateTime": "datetime",
    "externalUserStateChangeDateTime": "datetime",
    "otherMails": "collection",
    "proxyAddresses": "collection",
    "identities": "collection",
    "signInActivity/lastSignInDateTime": "datetime",
    "signInActivity/lastNonInteractiveSignInDateTime": "datetime",
    "signInActivity/lastSuccessfulSignInDateTime": "datetime",
}
WRITABLE: dict[str, type | tuple[type, ...]] = {
    "accountEnabled": bool,
    "displayName": str,
    "givenName": str,
    "surname": str,
    "jobTitle": (str, type(None)),
    "mail": (str, type(None)),
    "otherMails": list,
    "businessPhones": list,
    "mobilePhone": (str, type(None)),
    "officeLocation": (str, type(None)),
    "preferredLanguage": (str, type(None)),
    "department": (str, type(None)),
    "companyName": (str, type(None)),
    "mailNickname": str,
    "userType": str,
    "employeeLeaveDateTime": (str, type(None)),
    "city": (str, type(None)),
    "country": (str, type(None)),
    "usageLocation": (str, type(None)),
    "employeeId": (str, type(None)),
    "employeeType": (str, type(None)),
    "showInAddressList": bool,
}
READ_ONLY = frozenset(
    [
        "id",
        "createdDateTime",
        "creationType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "signInActivity",
        "signInSessionsValidFromDateTime",
        "deletedDateTime",
        "identities",
        "proxyAddresses",
    ]
)
SUPPORTED_QUERY = frozenset({"$filter", "$select", "$top", "$count", "$skiptoken", "$orderby", "$search", "$expand"})


# --- query options ---------------------------------------------------------------------------------


def parse_select(call: Call, collection: bool) -> tuple[str, ...] | None:
    raw = call.request.query.get("$select")
    if raw is None:
        return None
    canonical = {name.lower(): name for name in SELECTABLE}
    chosen: list[str] = []
    for part in raw.split(","):
        name = canonical.get(part.strip().lower())
        if name is None:
            raise bad_request(f"Could not find a property named '{part.strip()}' on type 'microsoft.graph.user'.")
        if collection and name in SINGLE_ENTITY_ONLY:
            raise GraphError(501, "NotImplemented", f"This operation target is not yet supported: '{name}'.")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def project(user: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    return {name: user.get(name) for name in (select or DEFAULT_SELECT)}


def _context(call: Call, entity_set: str, select: tuple[str, ...] | None, entity: bool = False) -> str:
    fragment = f"{entity_set}({','.join(select)})" if select else entity_set
    return call.context_url(fragment + ("/$entity" if entity else ""))


def _is_advanced(call: Call) -> bool:
    return call.request.headers.get("consistencylevel", "").lower() == "eventual"


def _page_size(call: Call, uses_sign_in: bool) -> int:
    raw = call.request.query.get("$top")
    top = 100
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= 999:
            raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.")
        top = int(raw)
    if uses_sign_in:
        top = min(top, call.sim.config.sign_in_activity_page_cap)
    return top


def _encode_token(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": 1, "p": position}).encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> int:
    if token is None:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(payload["p"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise bad_request("The specified page token value has expired and can't be used.") from exc


def _next_link(call: Call, position: int) -> str:
    return call.next_link({"$skiptoken": _encode_token(position)})


def _require_user_read(call: Call, select: Iterable[str] | None, filter_props: Iterable[str] = ()) -> bool:
    call.require("users.read")
    uses_sign_in = "signInActivity" in (select or ()) or any(
        p.lower().startswith("signinactivity") for p in filter_props
    )
    if uses_sign_in:
        call.require("users.read.signInActivity")
        require_premium_for_sign_in_activity(call)
    return uses_sign_in


# Microsoft's support article for this refusal gives the code and message; the status is a 403 (observed).
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
NON_PREMIUM_MESSAGE = "Neither tenant is B2C or tenant doesn't have premium license"


def require_premium_for_sign_in_activity(call: Call) -> None:
    """signInActivity needs a Microsoft Entra ID P1 or P2 licence on the tenant (config entraIdPremium)."""
    if not call.sim.config.entra_id_premium:
        raise GraphError(403, NON_PREMIUM_CODE, NON_PREMIUM_MESSAGE)


# --- listing ---------------------------------------------------------------------------------------


class _Query:
    """A parsed users query: the predicate plus the cheapest index that can answer it."""

    def __init__(self, call: Call) -> None:
        query = call.request.query
        unknown = [k for k in query if k.startswith("$") and k not in SUPPORTED_QUERY]
        if "$skip" in unknown:
            raise bad_request("'$skip' is not supported by the service.")
        if unknown:
            raise bad_request(f"Query option '{unknown[0]}' is not supported.")
        if "$search" in query or "$orderby" in query:
            raise unsupported_query("$search and $orderby are not supported by this simulator.")
        self.count = query.get("$count", "").lower() == "true"
        self.advanced = _is_advanced(call)
        if self.count and not self.advanced:
            raise bad_request("$count is not currently supported without the ConsistencyLevel: eventual header.")
        self.node: Node | None = None
        props: set[str] = set()
        if query.get("$filter"):
            self.node, info = parse_filter(query["$filter"])
            props = info.properties
            if info.needs_advanced and not (self.advanced and self.count):
                raise unsupported_query(
                    "Operator 'ne', 'not' or 'endsWith' is not supported because the required parameters might be "
                    "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer "
                    "to https://aka.ms/graph-docs/advanced-queries for more information"
                )
            sign_in = {p for p in props if p.lower().startswith("signinactivity")}
            if sign_in and len(props) > len(sign_in):
                raise unsupported_query("Filter on signInActivity cannot be combined with other properties.")
        self.predicate = compile_filter(self.node, FILTERABLE) if self.node is not None else (lambda _u: True)
        self.filter_props = props

    def candidates(self, call: Call, after_seq: int) -> Iterator[UserRecord]:
        directory = call.sim.directory
        conjuncts = _conjuncts(self.node)
        for node in conjuncts:
            if isinstance(node, InList) and node.prop.lower() == "id":
                records = [directory.users[v] for v in {str(x) for x in node.values} if v in directory.users]
                return iter(sorted((r for r in records if r.seq > after_seq), key=lambda r: r.seq))
            if isinstance(node, Comparison) and node.op == "eq" and isinstance(node.value, str):
                if node.prop.lower() == "id":
                    record = directory.users.get(node.value)
                    return iter([record] if record and record.seq > after_seq else [])
                if node.prop.lower() == "mail":
                    owners = directory.owners_of_address(node.value)
                    return iter(sorted((r for r in owners if r.seq > after_seq), key=lambda r: r.seq))
            if isinstance(node, AnyLambda) and node.op == "eq" and node.member is None and isinstance(node.value, str):
                owners = directory.owners_of_address(node.value)
                return iter(sorted((r for r in owners if r.seq > after_seq), key=lambda r: r.seq))
        guests_only = any(
            isinstance(n, Comparison)
            and n.prop.lower() == "usertype"
            and n.op == "eq"
            and isinstance(n.value, str)
            and n.value.lower() == "guest"
            for n in conjuncts
        )
        return directory.scan(after_seq, guests_only)

    def matches(self, call: Call, after_seq: int) -> Iterator[UserRecord]:
        now = call.sim.clock()
        for record in self.candidates(call, after_seq):
            if record.visible_after <= now and self.predicate(record.data):
                yield record


def _conjuncts(node: Node | None) -> list[Node]:
    if node is None:
        return []
    if isinstance(node, BoolOp) and node.op == "and":
        return [part for operand in node.operands for part in _conjuncts(operand)]
    if isinstance(node, BoolOp):
        return []
    return [node]


EXPAND_LIMIT = 20  # query-parameters.md: $expand on directory objects returns at most 20 related items


def parse_expand(call: Call) -> tuple[bool, tuple[str, ...] | None]:
    """``$expand=sponsors`` or ``$expand=sponsors($select=...)``: (expanded, the nested select). tenantsim expands
    sponsors only, and refuses any other expansion rather than ignore it."""
    raw = call.request.query.get("$expand")
    if raw is None:
        return False, None
    if _is_advanced(call):
        # query-parameters.md: $expand is not currently supported with advanced queries.
        raise bad_request("$expand is not supported with advanced queries (ConsistencyLevel: eventual).")
    name, _, nested = raw.strip().partition("(")
    if name.strip().lower() != "sponsors":
        raise bad_request(f"Expanding '{name.strip()}' on users is not supported by this simulator.")
    if not nested:
        return True, None
    inner = nested.rstrip(")").strip()
    key, _, names = inner.partition("=")
    if key.strip().lower() != "$select" or not names.strip():
        raise bad_request(f"Only $select may be nested in $expand=sponsors(...), got '{inner}'.")
    if call.sim.config.expand_nested_select == "ignore":
        return True, None  # known-issues.md: no nested $select in $expand for directory objects
    canonical = {name.lower(): name for name in SELECTABLE}
    chosen = []
    for part in (n.strip() for n in names.split(",") if n.strip()):
        if part.lower() not in canonical:
            raise bad_request(f"Could not find a property named '{part}' on type 'microsoft.graph.user'.")
        chosen.append(canonical[part.lower()])
    return True, tuple(dict.fromkeys(chosen))


def expanded(call: Call, user: dict[str, Any], body: dict[str, Any], nested: tuple[str, ...] | None) -> dict[str, Any]:
    """``body`` with the user's live sponsors (users and groups), at most EXPAND_LIMIT of them."""
    from tenantsim.api.sponsors import sponsor_object

    objects = (sponsor_object(call, s, nested) for s in call.sim.directory.sponsors.get(user["id"], []))
    return body | {"sponsors": [o for o in objects if o is not None][:EXPAND_LIMIT]}


def list_users(call: Call) -> GraphResponse:
    query = _Query(call)
    select = parse_select(call, collection=True)
    expand, nested = parse_expand(call)
    uses_sign_in = _require_user_read(call, select, query.filter_props)
    if expand and uses_sign_in and not call.sim.config.expand_with_sign_in_activity:
        # No page says whether $expand and signInActivity combine on the users list; the knob refuses it.
        raise bad_request("$expand is not supported together with signInActivity.")
    top = _page_size(call, uses_sign_in)
    after = _decode_token(call.request.query.get("$skiptoken"))
    page: list[dict[str, Any]] = []
    has_more = False
    for record in query.matches(call, after):
        if len(page) == top:
            has_more = True
            break
        shown = project(record.data, select)
        page.append(expanded(call, record.data, shown, nested) if expand else shown)
        last_seq = record.seq
    body: dict[str, Any] = {"@odata.context": _context(call, "users", select)}
    if query.count and "$skiptoken" not in call.request.query:
        body["@odata.count"] = sum(1 for _ in query.matches(call, 0))
    if has_more:
        body["@odata.nextLink"] = _next_link(call, last_seq)
    body["value"] = page
    return GraphResponse(200, body)


def count_users(call: Call) -> GraphResponse:
    if not _is_advanced(call):
        raise bad_request("$count is not currently supported without the ConsistencyLevel: eventual header.")
    query = _Query(call)
    _require_user_read(call, None, query.filter_props)
    return GraphResponse(200, str(sum(1 for _ in query.matches(call, 0))), {"Content-Type": "text/plain;charset=utf-8"})


# --- single user -----------------------------------------------------------------------------------


def visible_user(call: Call, key: str) -> UserRecord:
    """The user by id or userPrincipalName, as Graph sees it: a user still replicating is a 404."""
    directory = call.sim.directory
    record = directory.users.get(key)
    if record is None and "@" in key:
        record = next(
            (r for r in directory.owners_of_address(key) if r.data["userPrincipalName"].lower() == key.lower()), None
        )
        if record is None:
            record = next(
                (r for r in directory.scan(0, guests_only=False) if r.data["userPrincipalName"].lower() == key.lower()),
                None,
            )
    if record is None or record.visible_after > call.sim.clock():
        raise not_found(key)
    return record


def get_user(call: Call, user_id: str) -> GraphResponse:
    select = parse_select(call, collection=False)
    expand, nested = parse_expand(call)
    _require_user_read(call, select)
    record = visible_user(call, user_id)
    body = {"@odata.context": _context(call, "users", select, entity=True), **project(record.data, select)}
    return GraphResponse(200, expanded(call, record.data, body, nested) if expand else body)


# Properties whose update needs a mail permission (User-Mail.ReadWrite.All or higher), not User.ReadUpdate.All.
MAIL_PROPERTIES = frozenset({"mail", "otherMails"})


def _require_update(call: Call, properties: set[str]) -> None:
    """Every group of properties in the PATCH needs its own permission; mail and otherMails their own."""
    rest = properties - MAIL_PROPERTIES
    if rest:
        call.require("users.update.accountEnabled" if rest == {"accountEnabled"} else "users.update")
    if properties & MAIL_PROPERTIES and not (
        call.sim.config.user_read_update_covers_mail and "User.ReadUpdate.All" in call.caller.roles
    ):
        call.require("users.update.mail")


def update_user(call: Call, user_id: str) -> GraphResponse:
    body = call.request.body
    if isinstance(body, dict):
        # The SDK serialises its model's type annotation; Graph accepts it on the matching type.
        if body.get("@odata.type", "#microsoft.graph.user") != "#microsoft.graph.user":
            raise bad_request(f"Invalid @odata.type '{body['@odata.type']}' for a user.")
        body = {k: v for k, v in body.items() if k != "@odata.type"}
    if not isinstance(body, dict) or not body:
        raise bad_request("The request body must be a JSON object with at least one property.")
    _require_update(call, set(body))
    record = visible_user(call, user_id)
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name in READ_ONLY:
            raise bad_request(f"Property '{name}' is read-only and cannot be set.")
        expected = WRITABLE.get(name)
        if expected is None:
            raise bad_request(f"Invalid property '{name}'.")
        if not isinstance(value, expected) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")
        if name == "userType" and value not in {"Member", "Guest"}:
            raise bad_request("Invalid value specified for property 'userType' of resource 'User'.")
        changes[name] = value
    if isinstance(changes.get("mail"), str):
        changes["proxyAddresses"] = _proxy_addresses_with(call, record, changes["mail"])
    call.sim.directory.update_user(record.data["id"], changes)
    return GraphResponse(204)


PROXY_CONFLICT = "Another object with the same value for property proxyAddresses already exists."


def _proxy_addresses_with(call: Call, record: UserRecord, mail: str) -> list[str]:
    """The user's proxyAddresses once ``mail`` is set: the new address becomes the primary SMTP address.

    A mail that is another object's proxy address is refused, as resources/user.md says it fails.
    """
    user_id = record.data["id"]
    for other in call.sim.directory.owners_of_address(mail):
        if other.data["id"] != user_id and _has_proxy(other.data, mail):
            raise bad_request(PROXY_CONFLICT)
    kept = [p for p in record.data.get("proxyAddresses") or () if p.split(":", 1)[-1].lower() != mail.lower()]
    demoted = ["smtp:" + p.split(":", 1)[1] if p.startswith("SMTP:") else p for p in kept]
    return [f"SMTP:{mail}", *demoted]


def _has_proxy(user: dict[str, Any], address: str) -> bool:
    return any(p.split(":", 1)[-1].lower() == address.lower() for p in user.get("proxyAddresses") or ())


def delete_user(call: Call, user_id: str) -> GraphResponse:
    call.require("users.delete")
    record = visible_user(call, user_id)
    call.sim.directory.soft_delete(record.data["id"], call.sim.now_iso())
    return GraphResponse(204)


def revoke_sign_in_sessions(call: Call, user_id: str) -> GraphResponse:
    call.require("users.revokeSignInSessions")
    record = visible_user(call, user_id)
    call.sim.directory.update_user(record.data["id"], {"signInSessionsValidFromDateTime": call.sim.now_iso()})
    return GraphResponse(200, {"@odata.context": call.context_url("Edm.Boolean"), "value": True})


# --- deleted items and group members ---------------------------------------------------------------


def _object_page(
    call: Call, entity_set: str, users: list[dict[str, Any]], select: tuple[str, ...] | None, typed: bool = True
) -> GraphResponse:
    top = _page_size(call, "signInActivity" in (select or ()))
    start = _decode_token(call.request.query.get("$skiptoken"))
    chunk = users[start : start + top]
    values = [({"@odata.type": "#microsoft.graph.user"} if typed else {}) | project(user, select) for user in chunk]
    body: dict[str, Any] = {"@odata.context": _context(call, entity_set, select)}
    if start + top < len(users):
        body["@odata.nextLink"] = _next_link(call, start + top)
    body["value"] = values
    return GraphResponse(200, body)


# Query options of the deleted users list that tenantsim serves; the page documents more ($count, $expand,
# $filter, $orderby, $search), which are refused here rather than silently ignored.
DELETED_ITEMS_QUERY = frozenset({"$select", "$top", "$skiptoken"})


def list_deleted_users(call: Call) -> GraphResponse:
    call.require("deletedItems.list")
    unsupported = sorted(k for k in call.request.query if k.startswith("$") and k not in DELETED_ITEMS_QUERY)
    if unsupported:
        raise unsupported_query(f"Query option '{unsupported[0]}' on deleted items is not supported by this simulator.")
    select = parse_select(call, collection=True)
    users = [record.data for record in call.sim.directory.deleted.values()]
    # The cast answers in the cast type's entity set (directory-deleteditems-list.md: ...#groups for groups).
    return _object_page(call, "users", users, select, typed=False)


def _deleted(call: Call, object_id: str) -> UserRecord:
    return found(call.sim.directory.deleted, object_id)


def get_deleted_item(call: Call, object_id: str) -> GraphResponse:
    call.require("deletedItems.read")
    select = parse_select(call, collection=False)
    record = _deleted(call, object_id)
    body = {
        "@odata.context": call.context_url("directoryObjects/$entity"),  # directory-deleteditems-get.md
        "@odata.type": "#microsoft.graph.user",
        **project(record.data, select or (*DEFAULT_SELECT, "deletedDateTime")),
    }
    return GraphResponse(200, body)


def restore_deleted_item(call: Call, object_id: str) -> GraphResponse:
    call.require(
        "deletedItems.restore.pageOnly" if call.sim.config.restore_needs_user_read_write_all else "deletedItems.restore"
    )
    _deleted(call, object_id)
    record = call.sim.directory.restore(object_id)
    body = {
        "@odata.context": call.context_url("directoryObjects/$entity"),
        "@odata.type": "#microsoft.graph.user",
        **project(record.data, None),
    }
    return GraphResponse(200, body)


def purge_deleted_item(call: Call, object_id: str) -> GraphResponse:
    call.require("deletedItems.delete")
    if not call.sim.config.deleted_user_purge_app_only:
        # directory-deleteditems-delete.md: permanently deleting a user is not supported with application
        # permissions (tenantsim's tokens are all app-only); the knob follows the permissions changelog instead.
        raise denied()
    _deleted(call, object_id)
    del call.sim.directory.deleted[object_id]
    call.sim.directory.sponsors.pop(object_id, None)
    return GraphResponse(204)


def purge_deleted(sim: Simulator) -> None:
    """Deleted users older than the retention leave deletedItems for good (directory resource: after 30 days
    they are permanently deleted); run before each request, on the tenant's clock."""
    retention = timedelta(days=sim.config.deleted_item_retention_days)
    sim.directory.purge_expired(sim.now(), retention)
