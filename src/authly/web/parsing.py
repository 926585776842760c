"""Strict request body parsing: the right content type, valid UTF-8, bounded size.

Every problem becomes an OAuthError (4xx JSON); nothing here can produce a 500.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from quart import request
from werkzeug.exceptions import RequestEntityTooLarge

from authly.errors import InvalidRequest
from authly.web.errors import RequestTooLarge, UnsupportedMediaType

MAX_FORM_FIELDS = 50


async def _body() -> bytes:
    try:
        data = await request.get_data(as_text=False)
    except RequestEntityTooLarge:
        raise RequestTooLarge(
            f"The request body exceeds {request.max_content_length} bytes."
        ) from None
    return data if isinstance(data, bytes) else data.encode("utf-8")


def _media_type() -> str:
    return (request.mimetype or "").lower()


async def read_json_object() -> dict[str, Any]:
    """The body as a JSON object; 415 for another content type, 400 for bad JSON."""
    if _media_type() != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json.")
    raw = await _body()
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not valid UTF-8.") from None
    except (ValueError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return value


async def read_form_pairs() -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body as (name, value) pairs, in order,
    repeats included (for callers that decide themselves what a repeat means)."""
    if _media_type() != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("Content-Type must be application/x-www-form-urlencoded.")
    raw = await _body()
    try:
        text = raw.decode("utf-8")
        return parse_qsl(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS
        )
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not valid UTF-8.") from None
    except ValueError:
        raise InvalidRequest(f"Too many form fields (at most {MAX_FORM_FIELDS}).") from None


async def read_form() -> dict[str, str]:
    """An application/x-www-form-urlencoded body; repeated parameters are refused
    (RFC 6749 §3.2: parameters MUST NOT be included more than once)."""
    pairs = await read_form_pairs()
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise InvalidRequest(f"Parameter {key[:64]!r} is repeated.")
        params[key] = value
    return params


def string_field(body: dict[str, Any], name: str, max_length: int) -> str:
    """A required, non-empty string field of at most ``max_length`` characters."""
    value = optional_string_field(body, name, max_length)
    if value is None:
        raise InvalidRequest(f"Missing field: {name}.")
    return value


def optional_string_field(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Field {name} must be a string.")
    if len(value) > max_length:
        raise InvalidRequest(f"Field {name} is longer than {max_length} characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \uD800 escape
        raise InvalidRequest(f"Field {name} is not valid Unicode text.") from None
    return value
