"""Settings: defaults, overridden by a TOML file, then ``ROOST_*`` variables, then flags.

Every field of :class:`Settings` has the same name in all three places: the
TOML key ``mqtt_port``, the variable ``ROOST_MQTT_PORT`` and the flag
``--mqtt-port``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from roost.errors import InvalidInput

KIB = 1024


@dataclass(slots=True)
class Settings:
    data_dir: Path = Path("./roost-data")
    host: str = "127.0.0.1"
    mqtt_port: int = 1883
    http_port: int = 8080
    node: str = ""  # node name; defaults to the host name + pid
    admin_token_file: Path | None = None
    admin_token: str | None = None  # ROOST_ADMIN_TOKEN
    nats: str | None = None  # cluster backplane: comma-separated NATS URLs (ROOST_NATS)
    nats_prefix: str = "roost"  # prefix of every stream, bucket and subject Roost uses
    nats_replicas: int = 1  # JetStream replicas per stream: 3 on a 3-server cluster
    # limits that protect the system (DESIGN.md, "Defaults that protect the system")
    max_packet_size: int = 256 * KIB
    mailbox_depth: int = 100
    ttl_default: float = 3600.0
    ttl_max: float = 48 * 3600.0
    connect_timeout: float = 10.0
    max_inflight: int = 32  # outbound QoS 1 messages unacknowledged per connection
    receive_maximum: int = 100  # inbound QoS 1 messages unacknowledged per connection
    # retention and timers
    telemetry_retention: float = 24 * 3600.0
    telemetry_max_records: int = 10_000_000
    telemetry_ack_timeout: float = 30.0
    feedback_retention: float = 24 * 3600.0
    inquiry_lease: float = 30.0
    sweep_interval: float = 5.0
    max_wait: float = 60.0  # longest long-poll ``wait`` the API accepts
    log_level: str = "info"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "roost.db"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Turn a TOML/env/flag value into the field's type, with a clear error."""
    text = str(kind)
    try:
        if value is None:
            return None
        if "Path" in text:
            return Path(value)
        if text.startswith("int"):
            return int(value)
        if text.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"setting {name}: {value!r} is not a valid {text}") from exc


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < TOML file < ``ROOST_*`` environment < explicit overrides (flags)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(Settings)}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read config file {config_file}: {exc}") from exc
        data = data.get("roost", data)
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidInput(f"unknown setting(s) in {config_file}: {', '.join(unknown)}")
        values.update(data)
    for name in known:
        key = "ROOST_" + name.upper()
        if key in env:
            values[name] = env[key]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    coerced = {name: _coerce(name, known[name], value) for name, value in values.items()}
    settings = Settings(**coerced)
    if not settings.node:
        settings.node = f"{os.uname().nodename}-{os.getpid()}"
    return settings
