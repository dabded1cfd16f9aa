"""The service-facing HTTP API: JSON over HTTP under ``/v1`` (DESIGN.md, service-facing contract).

``create_app(hub)`` builds the Starlette application; one module per resource
holds its endpoints, ``schemas`` turns domain objects into JSON, ``errors``
turns every error into one JSON shape, and ``openapi`` describes it all.
"""

from roost.service.app import create_app

__all__ = ["create_app"]
