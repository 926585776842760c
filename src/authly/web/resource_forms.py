"""Form bodies that may carry ``resource`` more than once (RFC 8707 §2): the token,
pushed authorization request and device authorization endpoints."""

from __future__ import annotations

from authly.oauth.resources import split_form
from authly.web.parsing import read_form_pairs


async def read_form_with_resources() -> tuple[dict[str, str], tuple[str, ...]]:
    """The form's parameters (any other repeated parameter is refused, as ``read_form``
    does) and its ``resource`` values, in order."""
    return split_form(await read_form_pairs())
