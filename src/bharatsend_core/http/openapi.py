"""The OpenAPI 3.1 document, generated from the operations table and the models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from bharatsend_core import __version__
from bharatsend_core.http.core import CSV, JSON, Operation
from bharatsend_core.http.models import ErrorBody
from bharatsend_core.http.schema import SCHEMA_KEY, json_schema

__all__ = ["openapi_document"]

_STATUS_TEXT: Final = {
    400: "Malformed JSON",
    401: "Missing, invalid, revoked or expired API key",
    402: "Not enough credits",
    403: "The key lacks the scope, or the tenant is suspended",
    404: "Not found (also another tenant's resource)",
    405: "Method not allowed",
    409: "Idempotency or identity conflict",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation or DLT error; error.code and error.field say which",
    429: "Rate limited; see Retry-After",
    500: "Internal error",
    503: "Storage unavailable",
}

_AUTH_ERRORS: Final = (401, 403, 429)


def openapi_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """Every operation with its parameters, bodies, answers and security."""
    components: dict[str, Any] = {}
    error_ref = json_schema(ErrorBody, components)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
        }
        if op.description:
            entry["description"] = op.description
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            }
            for name in op.path_params
        ]
        if op.query is not None:
            parameters.extend(_query_parameters(op.query, components))
        if op.operation_id == "sendSms":
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Same as client_message_id (give one or both, equal)",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                }
            )
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": json_schema(op.body, components)}},
            }
        elif op.body_type == CSV:
            entry["requestBody"] = {
                "required": True,
                "content": {CSV: {"schema": {"type": "string"}}},
            }
        entry["responses"] = _responses(op, components, error_ref)
        if op.auth:
            entry["security"] = [{"bearer": []}]
            if op.scopes:
                entry["x-scopes"] = [s.value for s in op.scopes]
        else:
            entry["security"] = []
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bharatsend-core API",
            "version": __version__,
            "description": "India OTP and transactional SMS with DLT checks, delivery "
            "receipts, a credit ledger and signed webhooks.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: bs_live_<id>_<secret> or bs_test_<id>_<secret>",
                }
            },
        },
    }


def _query_parameters(model: type, components: dict[str, Any]) -> list[dict[str, Any]]:
    import typing

    import attrs

    hints = typing.get_type_hints(model)
    parameters = []
    for field in attrs.fields(model):
        schema = _strip_null(json_schema(hints[field.name], components))
        extra = field.metadata.get(SCHEMA_KEY, {})
        for key in ("minLength", "maxLength", "minimum", "maximum", "pattern"):
            if key in extra:
                schema[key] = extra[key]
        parameters.append(
            {
                "name": field.name,
                "in": "query",
                "required": field.default is attrs.NOTHING,
                "schema": schema,
            }
        )
    return parameters


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null branch."""
    branches = schema.get("anyOf")
    if branches:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            return dict(kept[0])
    return dict(schema)


def _responses(op: Operation, components: dict[str, Any], error_ref: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.raw:
        responses[str(op.status)] = {
            "description": "The OpenAPI document",
            "content": {JSON: {"schema": {"type": "object"}}},
        }
    else:
        properties: dict[str, Any] = {"data": json_schema(op.response, components)}
        required = ["data"]
        if op.paginated:
            properties["has_more"] = {"type": "boolean"}
            properties["next_cursor"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
            required += ["has_more", "next_cursor"]
        success: dict[str, Any] = {
            "description": op.summary,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": required,
                        "additionalProperties": False,
                    }
                }
            },
        }
        if op.operation_id == "sendSms":
            success["headers"] = {
                "Idempotent-Replayed": {
                    "description": "true when this is the answer to an earlier request",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        responses[str(op.status)] = success
    statuses = set(op.errors)
    if op.auth:
        statuses.update(_AUTH_ERRORS)
    if op.body is not None:
        statuses.update((400, 413, 415, 422))
    if op.body_type == CSV:
        statuses.update((413, 415, 422))
    if op.query is not None:
        statuses.add(422)
    for status in sorted(statuses):
        if op.operation_id == "readyz" and status == 503:
            responses["503"] = {**responses[str(op.status)], "description": "Not ready"}
            continue
        responses.setdefault(
            str(status),
            {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {JSON: {"schema": error_ref}},
            },
        )
    return responses
