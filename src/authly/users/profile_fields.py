"""Checking profile fields (OIDC Core §5.1) before they are stored.

``parse_changes`` takes a JSON object of fields to change and returns the column values
for ``store.users.update_attributes``; ``null`` or ``""`` clears a field. Every problem is
an InvalidRequest naming the field; nothing unknown or ill-typed reaches the store.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from authly.errors import InvalidRequest

# The longest value each text field takes.
TEXT_LIMITS: dict[str, int] = {
    "name": 200,
    "given_name": 100,
    "family_name": 100,
    "middle_name": 100,
    "nickname": 100,
    "preferred_username": 100,
    "gender": 50,
}
URL_FIELDS = ("profile", "picture", "website")
MAX_URL = 2048
MAX_EMAIL = 254
ADDRESS_LIMITS: dict[str, int] = {
    "formatted": 500,
    "street_address": 300,
    "locality": 100,
    "region": 100,
    "postal_code": 20,
    "country": 100,
}
BOOLEAN_FIELDS = ("email_verified", "phone_number_verified")
OTHER_FIELDS = ("email", "birthdate", "zoneinfo", "locale", "phone_number", "address")
FIELDS = frozenset((*TEXT_LIMITS, *URL_FIELDS, *BOOLEAN_FIELDS, *OTHER_FIELDS))

# A pragmatic address shape: one @, no spaces, a dot in the domain.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_BIRTHDATE = re.compile(r"^(\d{4})(?:-(\d{2})-(\d{2}))?$")
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
# BCP 47-ish: a 2-3 letter language, then subtags of 1-8 letters/digits (en, en-US, zh-Hant-TW).
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$")
# E.164 is recommended (+1 (425) 555-1212), with an RFC 3966 extension (;ext=5678).
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{1,30}(;ext=[0-9]{1,10})?$")


def parse_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The column values for the fields in ``body``; InvalidRequest on any problem.

    When ``email`` (``phone_number``) changes without ``email_verified``
    (``phone_number_verified``) in the same body, the flag is reset to false: a new
    address has not been verified.
    """
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown profile field: {unknown[0][:64]}.")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        changes[name] = _check(name, value)
    if "email" in changes and "email_verified" not in changes:
        changes["email_verified"] = False
    if "phone_number" in changes and "phone_number_verified" not in changes:
        changes["phone_number_verified"] = False
    return changes


def _check(name: str, value: Any) -> Any:
    if name in BOOLEAN_FIELDS:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise InvalidRequest(f"Field {name} must be true or false.")
        return value
    if name == "address":
        return _address(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Field {name} must be a string.")
    if name in TEXT_LIMITS:
        return _text(name, value, TEXT_LIMITS[name])
    if name in URL_FIELDS:
        return _url(name, value)
    if name == "email":
        return _pattern(name, value, _EMAIL, MAX_EMAIL, "an email address")
    if name == "birthdate":
        return _birthdate(value)
    if name == "zoneinfo":
        return _zoneinfo(value)
    if name == "locale":
        return _pattern(name, value, _LOCALE, 35, "a BCP 47 language tag such as en-US")
    return _pattern(name, value, _PHONE, 48, "a phone number such as +1 (425) 555-1212")


def _text(name: str, value: str, limit: int, *, multiline: bool = False) -> str:
    if len(value) > limit:
        raise InvalidRequest(f"Field {name} is longer than {limit} characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"Field {name} is not valid Unicode text.") from None
    allowed = "\r\n" if multiline else ""
    if any(ord(c) < 32 and c not in allowed for c in value) or "\x7f" in value:
        raise InvalidRequest(f"Field {name} contains control characters.")
    return value


def _pattern(name: str, value: str, pattern: re.Pattern[str], limit: int, what: str) -> str:
    if len(value) > limit or not pattern.match(value):
        raise InvalidRequest(f"Field {name} must be {what}.")
    return value


def _url(name: str, value: str) -> str:
    problem = f"Field {name} must be an absolute http or https URL."
    if len(value) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in value):
        raise InvalidRequest(problem)
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise InvalidRequest(problem) from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(problem)
    return value


def _birthdate(value: str) -> str:
    problem = "Field birthdate must be YYYY or YYYY-MM-DD."
    match = _BIRTHDATE.match(value)
    if match is None:
        raise InvalidRequest(problem)
    year, month, day = match.groups()
    if month is not None:
        # OIDC Core §5.1: year 0000 means the year is omitted (checked as a leap year).
        try:
            datetime.date(int(year) or 2000, int(month), int(day))
        except ValueError:
            raise InvalidRequest(problem) from None
    elif year == "0000":
        raise InvalidRequest(problem)
    return value


def _zoneinfo(value: str) -> str:
    problem = "Field zoneinfo must be an IANA time zone name such as Europe/Paris."
    if len(value) > 64 or not _ZONE.match(value):
        raise InvalidRequest(problem)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidRequest(problem) from None
    return value


def _address(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("Field address must be an object.")
    unknown = sorted(set(value) - set(ADDRESS_LIMITS))
    if unknown:
        raise InvalidRequest(f"Unknown address field: {str(unknown[0])[:64]}.")
    address: dict[str, str] = {}
    for part, text in value.items():
        if text is None or text == "":
            continue
        if not isinstance(text, str):
            raise InvalidRequest(f"Field address.{part} must be a string.")
        multiline = part in ("formatted", "street_address")  # §5.1.1: may hold newlines
        address[part] = _text(f"address.{part}", text, ADDRESS_LIMITS[part], multiline=multiline)
    return address or None
