"""What every endpoint reaches through its request: the hub and the long-poll registry."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from roost.config import Settings
from roost.hub.hub import Hub
from roost.service.longpoll import LongPolls


def hub_of(request: Request) -> Hub:
    return cast(Hub, request.app.state.hub)


def settings_of(request: Request) -> Settings:
    return hub_of(request).settings


def long_polls_of(request: Request) -> LongPolls:
    return cast(LongPolls, request.app.state.long_polls)
