"""``/v1/devices``: register, read, change, remove, rotate keys, list and import."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.errors import InvalidInput
from roost.hub.devices import MAX_PAGE
from roost.hub.views import DeviceSpec
from roost.service import schemas
from roost.service.context import hub_of
from roost.service.params import content_type, query_int, query_str, read_body, read_json

JSON_LIMIT = 1024 * 1024
IMPORT_LIMIT = 64 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000
CSV_COLUMNS = ("id", "groups", "key")


def _device_id(request: Request) -> str:
    value: str = request.path_params["id"]
    return value


async def register(request: Request) -> Response:
    body = schemas.Fields(await read_json(request, JSON_LIMIT), ("id", "groups", "metadata", "key"))
    device, key = await hub_of(request).devices.register(
        body.string("id", required=True) or "",
        groups=body.strings("groups") or (),
        metadata=body.mapping("metadata"),
        key=body.string("key"),
    )
    return JSONResponse({"id": device.id, "key": key, "groups": list(device.groups)}, 201)


async def show(request: Request) -> Response:
    view = await hub_of(request).devices.show(_device_id(request))
    return JSONResponse(schemas.device(view))


async def update(request: Request) -> Response:
    body = schemas.Fields(await read_json(request, JSON_LIMIT), ("groups", "enabled", "metadata"))
    view = await hub_of(request).devices.update(
        _device_id(request),
        groups=body.strings("groups"),
        enabled=body.boolean("enabled"),
        metadata=body.mapping("metadata"),
    )
    return JSONResponse(schemas.device(view))


async def remove(request: Request) -> Response:
    await hub_of(request).devices.remove(_device_id(request))
    return Response(status_code=204)


async def rotate_key(request: Request) -> Response:
    device_id = _device_id(request)
    key = await hub_of(request).devices.rotate_key(device_id)
    return JSONResponse({"id": device_id, "key": key})


async def list_devices(request: Request) -> Response:
    limit = query_int(request, "limit", default=100, minimum=1, maximum=MAX_PAGE)
    views = await hub_of(request).devices.list(
        after=query_str(request, "after") or None,
        limit=limit,
        group=query_str(request, "group") or None,
    )
    following = views[-1].device.id if len(views) == limit else None
    return JSONResponse({"devices": [schemas.device(v) for v in views], "next": following})


# --- bulk import -------------------------------------------------------------------


async def import_devices(request: Request) -> Response:
    """Register many devices from CSV (``id,groups[,key]``, groups split by ``;``) or JSON.

    Existing ids are skipped and keep their keys; the keys of the created
    devices are returned, once.
    """
    kind = (content_type(request) or "").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        raw = await _read_text(request)
        specs = parse_csv(raw)
    else:
        specs = parse_json_rows(await read_json(request, IMPORT_LIMIT))
    if len(specs) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"at most {MAX_IMPORT_ROWS} devices per import; send it in chunks")
    created = await hub_of(request).devices.import_devices(specs)
    return JSONResponse(
        {
            "created": len(created),
            "skipped": len(specs) - len(created),
            "keys": [{"id": device_id, "key": key} for device_id, key in created],
        }
    )


async def _read_text(request: Request) -> str:
    try:
        return (await read_body(request, IMPORT_LIMIT)).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV body must be UTF-8 text") from None


def parse_csv(text: str) -> list[DeviceSpec]:
    try:
        return _parse_csv(text)
    except csv.Error as exc:
        raise InvalidInput(f"the CSV body cannot be read: {exc}") from None


def _parse_csv(text: str) -> list[DeviceSpec]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if not header or header[0] != "id" or any(h not in CSV_COLUMNS for h in header):
        raise InvalidInput("the CSV header must be 'id,groups' or 'id,groups,key'")
    specs = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) > len(header):
            raise InvalidInput(f"CSV line {line}: {len(row)} cells, but {len(header)} columns")
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        groups = tuple(g.strip() for g in cells.get("groups", "").split(";") if g.strip())
        specs.append(DeviceSpec(cells["id"], groups, None, cells.get("key") or None))
    return specs


def parse_json_rows(body: Any) -> list[DeviceSpec]:
    if not isinstance(body, list):
        raise InvalidInput("the import body must be CSV (text/csv) or a JSON list of devices")
    specs = []
    for index, item in enumerate(body):
        row = schemas.Fields(item, ("id", "groups", "metadata", "key"), f"device #{index}")
        specs.append(
            DeviceSpec(
                row.string("id", required=True) or "",
                tuple(row.strings("groups") or ()),
                row.mapping("metadata"),
                row.string("key"),
            )
        )
    return specs
