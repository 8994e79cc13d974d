"""The client side of ADFS sign-in: the IdP-initiated sign-on form, as the ``aws-adfs`` tool drives it.

``GET`` the sign-on page (``/adfs/ls/IdpInitiatedSignOn.aspx?loginToRp=urn:amazon:webservices``),
``POST`` its form back with ``UserName``, ``Password`` and ``AuthMethod=FormsAuthentication`` (keeping
the page's other fields and cookies), then read the hidden ``SAMLResponse`` input of the auto-post page.
The roles on offer are the values of the assertion's ``https://aws.amazon.com/SAML/Attributes/Role``
attribute, each ``role_arn,principal_arn`` in either order. The assertion is not verified here: STS does
that when it is exchanged. It and the password stay in memory.
"""

from __future__ import annotations

import base64
import html
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


def fetch_assertion(
    url: str, username: str, password: str, *, timeout: float = 30.0, verify: bool = True
) -> str:
    """Sign in at ADFS and return the base64 ``SAMLResponse`` it would post to AWS."""
    import requests

    with requests.Session() as http:
        start = sign_on_url(url)
        page = http.get(start, timeout=timeout, verify=verify)
        if page.status_code != 200:
            raise AdfsError(f"ADFS answered HTTP {page.status_code} at {urlsplit(start).path}")
        forms = _parse(page.text).forms
        login = next(((a, f) for a, f in forms if "UserName" in f or "Password" in f), None)
        if login is None:
            raise AdfsError("the ADFS page has no sign-in form (UserName/Password)")
        action, fields = login
        fields.update({"UserName": username, "Password": password, "AuthMethod": "FormsAuthentication"})
        answer = http.post(
            urljoin(page.url, html.unescape(action)) if action else page.url,
            data=fields,
            timeout=timeout,
            verify=verify,
        )
        parsed = _parse(answer.text)
        for _, inputs in parsed.forms:
            if inputs.get("SAMLResponse"):
                return inputs["SAMLResponse"]
        reason = " ".join(parsed.error_text.split()) or f"HTTP {answer.status_code}, no SAMLResponse"
        raise AdfsError(f"ADFS refused the sign-in: {reason}")


def roles_in(assertion_b64: str) -> list[SamlRole]:
    """The (role, SAML provider) pairs the assertion's Role attribute offers, in order."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(base64.b64decode(assertion_b64), parser)
    except (ValueError, etree.XMLSyntaxError) as error:
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
