"""The OpenAPI 3.1 document of the API, written by hand and served at ``/openapi.json``.

Written rather than generated so that it says what users rely on (shapes,
status codes, units); ``tests/service/test_openapi.py`` checks that it covers
exactly the routes of ``app.ENDPOINTS``.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import roost
from roost.hub.tokens import SCOPES

JSON = dict[str, Any]


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, /, **props: JSON) -> JSON:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


def nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def request_object(required: list[str], /, **props: JSON) -> JSON:
    """A request body object: optional fields may also be null, which means absent."""
    optional = {k: v if k in required else nullable(v) for k, v in props.items()}
    return {**obj(required, **optional), "additionalProperties": False}


STR: JSON = {"type": "string"}
INT: JSON = {"type": "integer"}
NUM: JSON = {"type": "number"}
BOOL: JSON = {"type": "boolean"}
TIME: JSON = {"type": "number", "description": "Unix time in seconds"}
B64: JSON = {"type": "string", "contentEncoding": "base64"}
STRS: JSON = {"type": "array", "items": STR}


def array(item: JSON) -> JSON:
    return {"type": "array", "items": item}


# Device, group and consumer-group ids (roost.model.check_id).
ID: JSON = {"type": "string", "pattern": "^[A-Za-z0-9._:@=~-]{1,128}$"}
IDS: JSON = array(ID)
SCOPE: JSON = {"type": "string", "enum": list(SCOPES)}


SCHEMAS: dict[str, JSON] = {
    "Error": {
        "type": "object",
        "properties": {"error": STR, "message": STR},
        "required": ["error", "message"],
        "additionalProperties": True,
    },
    "Health": obj(["status"], status={"type": "string", "enum": ["ok", "unavailable"]}),
    "NewDevice": request_object(
        ["id"],
        id=ID,
        groups=IDS,
        metadata={"type": "object"},
        key={"type": "string", "minLength": 16},
    ),
    "DeviceCreated": obj(id=STR, key=STR, groups=STRS),
    "Device": obj(
        id=STR,
        groups=STRS,
        metadata={"type": "object"},
        enabled=BOOL,
        created_at=TIME,
        connected=BOOL,
        last_seen=nullable(TIME),
        mailbox_depth=INT,
    ),
    "DeviceChange": request_object([], groups=IDS, enabled=BOOL, metadata={"type": "object"}),
    "DevicePage": obj(devices=array(ref("Device")), next=nullable(STR)),
    "DeviceKey": obj(id=STR, key=STR),
    "ImportRow": request_object(
        ["id"],
        id=ID,
        groups=IDS,
        metadata={"type": "object"},
        key={"type": "string", "minLength": 16},
    ),
    "ImportResult": obj(created=INT, skipped=INT, keys=array(ref("DeviceKey"))),
    "MessageId": obj(id=STR),
    "CommandResponse": obj(id=STR, status=INT, payload=nullable(B64),
                           content_type=nullable(STR)),
    "MailboxMessage": obj(
        id=STR,
        kind={"type": "string", "enum": ["command", "notification", "reply"]},
        name=STR,
        ref=STR,
        payload=B64,
        content_type=nullable(STR),
        created_at=TIME,
        expires_at=TIME,
        group=nullable(STR),
        attempts=INT,
    ),
    "Mailbox": obj(messages=array(ref("MailboxMessage"))),
    "Purged": obj(purged=INT),
    "TelemetryRecord": obj(
        seq=INT, device=STR, path=STR, payload=B64, content_type=nullable(STR), received_at=TIME
    ),
    "TelemetryBatch": obj(records=array(ref("TelemetryRecord")), ack=nullable(STR)),
    "TelemetryAck": request_object(
        ["group", "ack"], group=ID, ack={"type": "string", "minLength": 1}
    ),
    "Acked": obj(acked=INT),
    "Inquiry": obj(
        id=STR,
        device=STR,
        name=STR,
        rid=STR,
        payload=B64,
        content_type=nullable(STR),
        created_at=TIME,
        expires_at=TIME,
    ),
    "InquiryState": {
        "allOf": [
            ref("Inquiry"),
            obj(state={"type": "string", "enum": ["pending", "taken", "answering", "ended"]}),
        ]
    },
    "Inquiries": obj(inquiries=array(ref("Inquiry"))),
    "Outcome": obj(
        seq=INT,
        id=STR,
        device=nullable(STR),
        kind=STR,
        name=STR,
        outcome={"type": "string", "enum": ["delivered", "expired", "rejected", "purged"]},
        at=TIME,
        group=nullable(STR),
        status=nullable(INT),
        payload=nullable(B64),
        reason=nullable(STR),
        content_type=nullable(STR),
    ),
    "Feedback": obj(outcomes=array(ref("Outcome")), next=INT),
    "NewToken": request_object(["scopes"], scopes={**array(SCOPE), "minItems": 1}, description=STR),
    "TokenCreated": obj(id=STR, token=STR, scopes=STRS),
    "Token": obj(id=STR, scopes=STRS, description=STR, created_at=TIME),
    "Tokens": obj(tokens=array(ref("Token"))),
}

# --- parameters and responses ----------------------------------------------------------


def path_param(name: str, description: str) -> JSON:
    return {"name": name, "in": "path", "required": True, "schema": STR, "description": description}


def query(name: str, schema: JSON, description: str, required: bool = False) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


DEVICE_ID = path_param("id", "device id")
TOPIC = path_param("topic", "notification topic; may contain '/'")
IID = path_param("iid", "inquiry id")
TTL = query("ttl", {"type": "number", "exclusiveMinimum": 0}, "time to live in seconds")
WAIT = query("wait", {"type": "number", "minimum": 0}, "seconds to wait (long poll)")


def answer(schema: str | None, description: str) -> JSON:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def error(description: str) -> JSON:
    return answer("Error", description)


JSON_BODY = "application/json"
RAW_BODY = "application/octet-stream"


def body(schema: JSON, media: str = JSON_BODY) -> JSON:
    return {"required": True, "content": {media: {"schema": schema}}}


PAYLOAD = {
    "required": False,
    "content": {RAW_BODY: {"schema": {"type": "string", "format": "binary"}}},
}


def op(
    summary: str,
    tag: str,
    responses: dict[str, JSON],
    *,
    params: list[JSON] | None = None,
    request: JSON | None = None,
    open_route: bool = False,
) -> JSON:
    result: JSON = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if params:
        result["parameters"] = params
    if request is not None:
        result["requestBody"] = request
        result["responses"].setdefault("422", error("invalid request body"))
    if any(p["in"] == "query" for p in params or []):
        result["responses"].setdefault("422", error("invalid query parameter"))
    if open_route:
        result["security"] = []
    else:
        result["responses"]["401"] = error("missing or invalid token")
        result["responses"]["403"] = error("the token lacks the scope")
    return result


NOT_FOUND = {"404": error("no such device")}
TOO_LARGE = {"413": error("payload too large")}


def _operations() -> dict[tuple[str, str], JSON]:
    d = "/v1/devices/{id}"
    return {
        ("GET", "/healthz"): op(
            "Health: 200 only when the node can serve",
            "health",
            {"200": answer("Health", "serving"), "503": answer("Health", "cannot serve")},
            open_route=True,
        ),
        ("GET", "/metrics"): op(
            "Prometheus metrics",
            "health",
            {"200": {"description": "metrics", "content": {"text/plain": {"schema": STR}}}},
            open_route=True,
        ),
        ("GET", "/openapi.json"): op(
            "This document",
            "health",
            {"200": {"description": "OpenAPI 3.1", "content": {JSON_BODY: {"schema": {}}}}},
            open_route=True,
        ),
        ("POST", "/v1/devices"): op(
            "Register a device; its key is returned once",
            "devices",
            {
                "201": answer("DeviceCreated", "registered"),
                "409": error("a device with this id exists"),
            },
            request=body(ref("NewDevice")),
        ),
        ("GET", "/v1/devices"): op(
            "List devices in id order, a page at a time",
            "devices",
            {"200": answer("DevicePage", "a page; pass next as after for the next one")},
            params=[
                query("after", STR, "list ids after this one"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                query("group", STR, "only members of this group"),
            ],
        ),
        ("POST", "/v1/devices/import"): op(
            "Register many devices (CSV id,groups[,key] with groups split by ';', or JSON)",
            "devices",
            {"200": answer("ImportResult", "created and skipped counts, keys of created")},
            request={
                "required": True,
                "content": {
                    "text/csv": {"schema": STR},
                    JSON_BODY: {"schema": array(ref("ImportRow"))},
                },
            },
        ),
        ("GET", d): op(
            "Read a device, with connected, last_seen and mailbox_depth",
            "devices",
            {"200": answer("Device", "the device"), **NOT_FOUND},
            params=[DEVICE_ID],
        ),
        ("PATCH", d): op(
            "Change groups, enabled or metadata",
            "devices",
            {"200": answer("Device", "the changed device"), **NOT_FOUND},
            params=[DEVICE_ID],
            request=body(ref("DeviceChange")),
        ),
        ("DELETE", d): op(
            "Remove a device and its mailbox",
            "devices",
            {"204": answer(None, "removed"), **NOT_FOUND},
            params=[DEVICE_ID],
        ),
        ("POST", d + "/key"): op(
            "Give the device a new key (the old one stops working)",
            "devices",
            {"200": answer("DeviceKey", "the new key"), **NOT_FOUND},
            params=[DEVICE_ID],
        ),
        ("POST", d + "/commands/{name}"): op(
            "Send a command; with wait, answer with the device's response",
            "messages",
            {
                "200": answer("CommandResponse", "the device answered (with wait)"),
                "202": answer("MessageId", "queued (without wait)"),
                "409": error("mailbox full"),
                "504": error("no answer within wait; carries the command id"),
                **NOT_FOUND,
                **TOO_LARGE,
            },
            params=[DEVICE_ID, path_param("name", "command name"), TTL, WAIT],
            request=PAYLOAD,
        ),
        ("POST", d + "/notifications/{topic}"): op(
            "Notify one device",
            "messages",
            {
                "202": answer("MessageId", "queued"),
                "409": error("mailbox full"),
                **NOT_FOUND,
                **TOO_LARGE,
            },
            params=[DEVICE_ID, TOPIC, TTL],
            request=PAYLOAD,
        ),
        ("POST", "/v1/groups/{group}/notifications/{topic}"): op(
            "Notify every member of a group (stored once)",
            "messages",
            {"202": answer("MessageId", "stored"), **TOO_LARGE},
            params=[path_param("group", "group id"), TOPIC, TTL],
            request=PAYLOAD,
        ),
        ("POST", "/v1/broadcast/notifications/{topic}"): op(
            "Notify every device (stored once)",
            "messages",
            {"202": answer("MessageId", "stored"), **TOO_LARGE},
            params=[TOPIC, TTL],
            request=PAYLOAD,
        ),
        ("GET", d + "/mailbox"): op(
            "Pending messages of a device (its own, then unread group messages)",
            "messages",
            {"200": answer("Mailbox", "pending messages"), **NOT_FOUND},
            params=[DEVICE_ID],
        ),
        ("DELETE", d + "/mailbox"): op(
            "Empty a device's mailbox (each message gets a purged outcome)",
            "messages",
            {"200": answer("Purged", "how many were purged"), **NOT_FOUND},
            params=[DEVICE_ID],
        ),
        ("GET", "/v1/telemetry"): op(
            "Fetch telemetry for a consumer group (records are leased until acked)",
            "telemetry",
            {"200": answer("TelemetryBatch", "records and the token that acks them")},
            params=[
                query("group", ID, "consumer group", required=True),
                query("max", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most"),
                WAIT,
                query(
                    "from",
                    {"type": "string", "enum": ["earliest", "latest"]},
                    "where a new consumer group starts",
                ),
            ],
        ),
        ("POST", "/v1/telemetry/ack"): op(
            "Ack the records of one fetch",
            "telemetry",
            {"200": answer("Acked", "how many were settled")},
            request=body(ref("TelemetryAck")),
        ),
        ("GET", "/v1/inquiries"): op(
            "Take inquiries to answer (leased to the caller)",
            "inquiries",
            {"200": answer("Inquiries", "taken inquiries")},
            params=[
                query("max", {"type": "integer", "minimum": 1, "maximum": 100}, "at most"),
                WAIT,
            ],
        ),
        ("GET", "/v1/inquiries/{iid}"): op(
            "Read an inquiry and its state",
            "inquiries",
            {"200": answer("InquiryState", "the inquiry"), "404": error("no such inquiry")},
            params=[IID],
        ),
        ("POST", "/v1/inquiries/{iid}/replies"): op(
            "Reply to an inquiry; end=true makes it the last reply",
            "inquiries",
            {
                "202": answer("MessageId", "queued in the device's mailbox"),
                "404": error("no such inquiry"),
                "409": error("the inquiry has ended, or the mailbox is full"),
                **TOO_LARGE,
            },
            params=[IID, query("end", BOOL, "final reply")],
            request=PAYLOAD,
        ),
        ("GET", "/v1/feedback"): op(
            "Outcomes of messages after a cursor",
            "feedback",
            {"200": answer("Feedback", "outcomes; next is the cursor to read on")},
            params=[
                query("after", {"type": "integer", "minimum": 0}, "cursor (seq)"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most"),
                WAIT,
            ],
        ),
        ("POST", "/v1/tokens"): op(
            "Create an API token; its secret is returned once",
            "tokens",
            {"201": answer("TokenCreated", "created")},
            request=body(ref("NewToken")),
        ),
        ("GET", "/v1/tokens"): op("List API tokens", "tokens", {"200": answer("Tokens", "tokens")}),
        ("DELETE", "/v1/tokens/{id}"): op(
            "Revoke an API token",
            "tokens",
            {"204": answer(None, "revoked"), "404": error("no such token")},
            params=[path_param("id", "token id")],
        ),
    }


@functools.cache
def document() -> JSON:
    paths: dict[str, JSON] = {}
    for (method, path), operation in _operations().items():
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Roost service API",
            "version": roost.__version__,
            "description": "Devices, commands, notifications, telemetry, inquiries and "
            "feedback of a Roost gateway. Payloads go in as raw request bodies and come out "
            "base64-encoded; times are Unix seconds.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def serve(request: Request) -> Response:
    return JSONResponse(document())
