"""One exception tree for Roost.

Every error Roost raises on purpose derives from :class:`RoostError`. Each class
carries the codes it maps to on the wire, so that one function per protocol
(``edge/mqtt/errors.py``, ``service/errors.py``) turns any of them into a reply::

    RoostError                      code         http  mqtt reason
    ├── ProtocolError               protocol     400   0x82 protocol error
    │   ├── MalformedPacket         malformed    400   0x81 malformed packet
    │   ├── PacketTooLarge          too_large    413   0x95 packet too large
    │   ├── UnsupportedVersion      version      400   0x84 unsupported protocol version
    │   ├── TopicNameInvalid        topic        400   0x90 topic name invalid
    │   ├── RetainNotSupported      retain       400   0x9A retain not supported
    │   └── ReceiveMaximumExceeded  receive_max  400   0x93 receive maximum exceeded
    ├── AuthError                   unauthorized 401   0x87 not authorized
    │   ├── BadCredentials          unauthorized 401   0x87 not authorized
    │   └── BadAuthenticationMethod unauthorized 401   0x8C bad authentication method
    ├── Forbidden                   forbidden    403   0x87 not authorized
    ├── NotFound                    not_found    404
    │   └── UnknownDevice           unknown_device 404
    ├── Conflict                    conflict     409
    │   ├── AlreadyExists           exists       409
    │   ├── MailboxFull             mailbox_full 409   0x97 quota exceeded
    │   └── InquiryEnded            inquiry_ended 409
    ├── InvalidInput                invalid      422
    │   └── InvalidId               invalid_id   422   0x85 client identifier not valid
    ├── PayloadTooLarge             too_large    413   0x95
    ├── RateLimited                 rate_limited 429   0x96 message rate too high
    ├── Timeout                     timeout      504
    └── Unavailable                 unavailable  503   0x88 server unavailable
"""

from __future__ import annotations


class RoostError(Exception):
    """Root of every error Roost raises on purpose."""

    code: str = "internal"
    http_status: int = 500
    mqtt_reason: int = 0x80  # unspecified error

    def __init__(self, message: str | None = None, **detail: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.detail = detail  # extra fields for the error body, e.g. a command's id

    @property
    def message(self) -> str:
        return str(self.args[0])


# --- protocol -------------------------------------------------------------


class ProtocolError(RoostError):
    """The peer broke the protocol."""

    code = "protocol"
    http_status = 400
    mqtt_reason = 0x82


class MalformedPacket(ProtocolError):
    """A packet could not be parsed."""

    code = "malformed"
    mqtt_reason = 0x81


class PacketTooLarge(ProtocolError):
    """A packet is larger than the limit."""

    code = "too_large"
    http_status = 413
    mqtt_reason = 0x95


class UnsupportedVersion(ProtocolError):
    """The protocol version is not supported."""

    code = "version"
    mqtt_reason = 0x84


class TopicNameInvalid(ProtocolError):
    """A topic name or filter is not valid."""

    code = "topic"
    mqtt_reason = 0x90


class RetainNotSupported(ProtocolError):
    """Roost keeps no retained messages (it advertises Retain Available = 0)."""

    code = "retain"
    mqtt_reason = 0x9A


class ReceiveMaximumExceeded(ProtocolError):
    """The peer sent more unacknowledged QoS 1/2 messages than allowed."""

    code = "receive_max"
    mqtt_reason = 0x93


# --- authentication and authorisation --------------------------------------


class AuthError(RoostError):
    """Authentication is required or failed."""

    code = "unauthorized"
    http_status = 401
    mqtt_reason = 0x87


class BadCredentials(AuthError):
    """Unknown device or wrong key.

    Answered with CONNACK "not authorized" (0x87 / 3.1.1 code 5) rather than
    "bad user name or password", so a probe learns nothing about which part was wrong.
    """


class BadAuthenticationMethod(AuthError):
    """MQTT 5 enhanced authentication (an Authentication Method) is not supported."""

    mqtt_reason = 0x8C


class Forbidden(RoostError):
    """The caller may not do this."""

    code = "forbidden"
    http_status = 403
    mqtt_reason = 0x87


# --- resources --------------------------------------------------------------


class NotFound(RoostError):
    """No such resource."""

    code = "not_found"
    http_status = 404


class UnknownDevice(NotFound):
    """No device with this id."""

    code = "unknown_device"


class Conflict(RoostError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class AlreadyExists(Conflict):
    """A resource with this id already exists."""

    code = "exists"


class MailboxFull(Conflict):
    """The device's mailbox holds its maximum number of messages."""

    code = "mailbox_full"
    mqtt_reason = 0x97


class InquiryEnded(Conflict):
    """The inquiry was answered, cancelled or expired."""

    code = "inquiry_ended"


class InvalidInput(RoostError):
    """A value in the request is not valid."""

    code = "invalid"
    http_status = 422
    mqtt_reason = 0x83  # implementation specific error


class InvalidId(InvalidInput):
    """An id is empty, too long, or contains '+', '#', '/', '$' or whitespace."""

    code = "invalid_id"
    mqtt_reason = 0x85


class PayloadTooLarge(RoostError):
    """The payload is larger than the limit."""

    code = "too_large"
    http_status = 413
    mqtt_reason = 0x95


class RateLimited(RoostError):
    """Too many requests; slow down."""

    code = "rate_limited"
    http_status = 429
    mqtt_reason = 0x96


class Timeout(RoostError):
    """No answer in time."""

    code = "timeout"
    http_status = 504


class Unavailable(RoostError):
    """The node cannot serve right now (backplane unreachable or not ready)."""

    code = "unavailable"
    http_status = 503
    mqtt_reason = 0x88
