"""HTTP error answers map back to Roost's exception classes."""

from __future__ import annotations

import httpx

from roost import errors
from roost.sdk.errors import BY_CODE, error_from_response


def answer(status: int, body: object = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


def test_every_code_has_its_most_general_class() -> None:
    assert BY_CODE["too_large"] is errors.PayloadTooLarge
    assert BY_CODE["unauthorized"] is errors.AuthError
    assert BY_CODE["unknown_device"] is errors.UnknownDevice
    assert BY_CODE["timeout"] is errors.Timeout
    assert BY_CODE["internal"] is errors.RoostError
    assert BY_CODE["inquiry_ended"] is errors.InquiryEnded


def test_detail_is_kept() -> None:
    error = error_from_response(
        answer(504, {"error": "timeout", "message": "no answer", "id": "c1"})
    )
    assert isinstance(error, errors.Timeout)
    assert error.message == "no answer" and error.detail == {"id": "c1"}


def test_unknown_code_keeps_the_code_and_falls_back_on_status() -> None:
    error = error_from_response(answer(409, {"error": "brand_new", "message": "m"}))
    assert isinstance(error, errors.Conflict)
    assert error.code == "brand_new" and error.http_status == 409


def test_non_roost_answer() -> None:
    error = error_from_response(answer(502, text="<html>bad gateway</html>"))
    assert type(error) is errors.RoostError
    assert error.http_status == 502 and "bad gateway" in error.message
    error = error_from_response(answer(503, text=""))
    assert isinstance(error, errors.Unavailable)
