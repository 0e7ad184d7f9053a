"""POST /$batch: up to 20 requests, each run through the full pipeline (auth, permissions, throttling)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tenantsim.errors import GraphError, envelope
from tenantsim.runtime import GraphRequest, GraphResponse, Simulator

MAX_REQUESTS = 20
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
ITEM_HEADERS = (
    "content-type",
    "retry-after",
    "location",
    "x-ms-resource-unit",
    "x-ms-throttle-scope",
    "x-ms-throttle-information",
    "x-ms-throttle-limit-percentage",
)


def run_batch(sim: Simulator, outer: GraphRequest) -> GraphResponse:
    sim.issuer.verify(outer.headers.get("authorization"))
    given = _validated(outer.body)
    items = _in_dependency_order(given)
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    for item in items:
        item_id = item["id"]
        failed = [d for d in item.get("dependsOn") or [] if statuses[d.lower()] >= 400]
        if failed:
            result = _failed_dependency(item_id, failed)
        else:
            response = sim.handle(_inner_request(outer, item))
            result = {"id": item_id, "status": response.status, "headers": _item_headers(response)}
            if response.body is not None:
                result["body"] = response.body
        statuses[item_id.lower()] = result["status"]
        responses.append(result)
    # json-batching.md: responses may come in another order than the requests; clients correlate by id.
    position = {item["id"].lower(): index for index, item in enumerate(given)}
    responses.sort(key=lambda r: position[r["id"].lower()], reverse=not sim.config.batch_responses_in_request_order)
    return GraphResponse(200, {"responses": responses})


def _validated(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise GraphError(400, "BadRequest", "Invalid batch payload format: a 'requests' array is required.")
    items = body["requests"]
    if not items:
        raise GraphError(400, "BadRequest", "Invalid batch payload format: the batch holds no requests.")
    if len(items) > MAX_REQUESTS:
        raise GraphError(400, "BadRequest", f"Invalid batch payload format: at most {MAX_REQUESTS} requests.")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise GraphError(400, "BadRequest", "Every batch request needs a string 'id'.")
        key = item["id"].lower()
        if key in seen:
            raise GraphError(400, "BadRequest", f"Batch request ids must be unique; '{item['id']}' repeats.")
        seen.add(key)
    for item in items:
        if str(item.get("method", "")).upper() not in METHODS:
            raise GraphError(400, "BadRequest", f"Batch request '{item['id']}' has an invalid method.")
        url = item.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme or urlsplit(url).netloc:
            raise GraphError(400, "BadRequest", f"Batch request '{item['id']}' needs a relative url.")
        depends_on = item.get("dependsOn") or []
        if not isinstance(depends_on, list):
            raise GraphError(400, "BadRequest", f"Batch request '{item['id']}' has a 'dependsOn' that is not an array.")
        for dependency in depends_on:
            if not isinstance(dependency, str) or dependency.lower() not in seen:
                raise GraphError(400, "BadRequest", f"Batch request '{item['id']}' depends on an unknown id.")
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        if item.get("body") is not None and "content-type" not in headers:
            raise GraphError(400, "BadRequest", f"Batch request '{item['id']}' has a body but no Content-Type.")
    return items


def _in_dependency_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items in an order that runs every dependency before its dependants (json-batching.md's example
    lists request 3 before the request 4 it depends on); otherwise in the order given. A cycle is a 400
    (undocumented: a cycle cannot be run in any order)."""
    by_id = {item["id"].lower(): item for item in items}
    ordered: list[dict[str, Any]] = []
    state: dict[str, str] = {}

    def visit(key: str) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise GraphError(400, "BadRequest", f"Batch request '{by_id[key]['id']}' is part of a dependsOn cycle.")
        state[key] = "visiting"
        for dependency in by_id[key].get("dependsOn") or []:
            visit(dependency.lower())
        state[key] = "done"
        ordered.append(by_id[key])

    for key in by_id:
        visit(key)
    return ordered


def _inner_request(outer: GraphRequest, item: dict[str, Any]) -> GraphRequest:
    parts = urlsplit(item["url"])
    path = "/" + unquote(parts.path).lstrip("/")
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    headers["authorization"] = outer.headers.get("authorization", "")
    return GraphRequest(
        method=item["method"].upper(),
        version=outer.version,
        path=path,
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=item.get("body"),
        in_batch=True,
    )


def _item_headers(response: GraphResponse) -> dict[str, str]:
    lowered = {k.lower(): (k, v) for k, v in response.headers.items()}
    picked = {}
    for name in ITEM_HEADERS:
        if name in lowered:
            original, value = lowered[name]
            picked["Content-Type" if name == "content-type" else original] = value
    return picked


def _failed_dependency(item_id: str, failed: list[str]) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    return {
        "id": item_id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": envelope("FailedDependency", f"Dependent request(s) {failed} failed.", request_id, request_id),
    }
