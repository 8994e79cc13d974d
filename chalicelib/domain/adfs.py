"""ADFS's IdP-initiated sign-on, as the ``aws-adfs`` tool drives it: pages in, form fields and roles out.

``GET`` the sign-on page (``/adfs/ls/IdpInitiatedSignOn.aspx?loginToRp=urn:amazon:webservices``),
``POST`` its form back with ``UserName``, ``Password`` and ``AuthMethod=FormsAuthentication`` (keeping
the page's other fields), then read the hidden ``SAMLResponse`` input of the auto-post page. The roles
on offer are the values of the assertion's ``https://aws.amazon.com/SAML/Attributes/Role`` attribute,
each ``role_arn,principal_arn`` in either order. The assertion is not verified here: STS does that when
it is exchanged.

Only parsing lives here (no I/O), so the CLI (over ``requests``, from the operator's machine) and the
service (over its SSRF-guarded client, ``chalicelib/adapters/adfs_http.py``) share it through
``sign_in``, which takes the transport as a function. The assertion is parsed with ``defusedxml``: it
is text a remote server chose.
"""

from __future__ import annotations

import base64
import binascii
import html
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
RELYING_PARTY = "urn:amazon:webservices"


class AdfsError(Exception):
    """ADFS refused the sign-in or answered with something that is not its sign-on flow."""


@dataclass(frozen=True)
class SamlRole:
    role_arn: str
    principal_arn: str

    def public(self) -> dict[str, str]:
        return {"role_arn": self.role_arn, "principal_arn": self.principal_arn}


@dataclass(frozen=True)
class Page:
    """One HTTP answer as the sign-on flow needs it: status, final URL, text."""

    status: int
    url: str
    text: str


# get(url) -> Page; post(url, form fields) -> Page. The transport keeps cookies between the two.
Get = Callable[[str], Page]
Post = Callable[[str, dict[str, str]], Page]


class _Forms(HTMLParser):
    """Forms, their inputs and ADFS's ``errorText`` from an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.error_text = ""
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and values.get("name"):
            if values.get("type") in ("checkbox", "submit"):
                return
            self.forms[-1][1][values["name"]] = values.get("value", "")
        elif values.get("id") == "errorText":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error_text += data


def _parse(page: str) -> _Forms:
    parser = _Forms()
    parser.feed(page)
    return parser


def sign_on_url(url: str) -> str:
    """The IdP-initiated sign-on URL for AWS; a bare host gets ADFS's standard path."""
    parts = urlsplit(url)
    if not parts.path or parts.path == "/":
        url = url.rstrip("/") + "/adfs/ls/IdpInitiatedSignOn.aspx"
    if "loginToRp=" not in url:
        url += ("&" if "?" in url else "?") + f"loginToRp={RELYING_PARTY}"
    return url


def login_request(page: Page, username: str, password: str) -> tuple[str, dict[str, str]]:
    """Where the sign-on page's form posts, and the fields to post (the page's own plus the user's)."""
    if page.status != 200:
        raise AdfsError(f"ADFS answered HTTP {page.status} at {urlsplit(page.url).path}")
    login = next(((a, f) for a, f in _parse(page.text).forms if "UserName" in f or "Password" in f), None)
    if login is None:
        raise AdfsError("the ADFS page has no sign-in form (UserName/Password)")
    action, fields = login
    fields.update({"UserName": username, "Password": password, "AuthMethod": "FormsAuthentication"})
    return (urljoin(page.url, html.unescape(action)) if action else page.url), fields


def assertion_in(page: Page) -> str:
    """The base64 ``SAMLResponse`` of the page after the sign-in, or ADFS's reason for refusing."""
    parsed = _parse(page.text)
    for _, inputs in parsed.forms:
        if inputs.get("SAMLResponse"):
            return inputs["SAMLResponse"]
    reason = " ".join(parsed.error_text.split()) or f"HTTP {page.status}, no SAMLResponse"
    raise AdfsError(f"ADFS refused the sign-in: {reason}")


def sign_in(get: Get, post: Post, url: str, username: str, password: str) -> str:
    """Sign in at ADFS through ``get``/``post`` and return the base64 ``SAMLResponse``."""
    action, fields = login_request(get(sign_on_url(url)), username, password)
    return assertion_in(post(action, fields))


def roles_in(assertion_b64: str) -> list[SamlRole]:
    """The (role, SAML provider) pairs the assertion's Role attribute offers, in order."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(base64.b64decode(assertion_b64, validate=False))
    except (ValueError, binascii.Error, ParseError, DefusedXmlException) as error:
        raise AdfsError("ADFS's SAMLResponse is not base64-encoded XML") from error
    roles: list[SamlRole] = []
    for attribute in root.iter(f"{{{SAML_NS}}}Attribute"):
        if attribute.get("Name") != ROLE_ATTRIBUTE:
            continue
        for value in attribute.iter(f"{{{SAML_NS}}}AttributeValue"):
            parts = [p.strip() for p in (value.text or "").split(",")]
            role = next((p for p in parts if ":role/" in p), None)
            principal = next((p for p in parts if ":saml-provider/" in p), None)
            if role and principal:
                roles.append(SamlRole(role, principal))
    return roles
