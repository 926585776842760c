"""Read the forms of an HTML page the way a browser without JavaScript would submit them.

Used by the in-process page tests and by the end-to-end client-library tests, so the
pages are exercised through their real markup (hidden fields, actions, buttons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # inputs with a name
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submits

    def values(self, button: str | None = None, **overrides: str) -> dict[str, str]:
        """What submitting the form sends: its fields, ``overrides``, and the submit
        button whose value is ``button`` (if named)."""
        data = dict(self.fields)
        if button is not None:
            matches = [(n, v) for n, v in self.buttons if v == button and n]
            assert matches, f"no submit button with value {button!r} in {self.buttons}"
            name, value = matches[0]
            data[name] = value
        data.update(overrides)
        return data


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.stylesheets: list[str] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._current)
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a.get("href", ""))
        elif self._current is not None and tag == "input" and a.get("name"):
            self._current.fields[a["name"]] = a.get("value", "")
        elif self._current is not None and tag == "button" and a.get("type", "submit") == "submit":
            self._current.buttons.append((a.get("name", ""), a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def stylesheets(html: str) -> list[str]:
    parser = _FormParser()
    parser.feed(html)
    return parser.stylesheets


def form_posting_to(html: str, suffix: str, base: str = "") -> Form:
    """The one form whose action ends with ``suffix`` (action made absolute on ``base``)."""
    forms = [f for f in parse_forms(html) if f.action.endswith(suffix)]
    assert len(forms) == 1, f"expected one form posting to *{suffix}, page was:\n{html}"
    form = forms[0]
    if base:
        form.action = urljoin(base, form.action)
    return form
