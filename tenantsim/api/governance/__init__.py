"""Identity governance: entitlement management (v1.0 model) and access review definitions, one module per
resource; their shared paging, filter and expand helpers are in `common`, the per-tenant state in `state`."""
