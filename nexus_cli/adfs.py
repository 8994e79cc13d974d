"""The CLI's side of ADFS sign-in: the operator's own machine reaches the ADFS URL they typed, over
``requests`` (cookies kept between the page and the form post). The flow and the assertion's parsing
are shared with the service (``chalicelib/domain/adfs.py``). The assertion and the password stay in
memory.
"""

from __future__ import annotations

from chalicelib.domain.adfs import AdfsError, Page, SamlRole, roles_in, sign_in, sign_on_url

__all__ = ["AdfsError", "SamlRole", "fetch_assertion", "roles_in", "sign_on_url"]


def fetch_assertion(
    url: str, username: str, password: str, *, timeout: float = 30.0, verify: bool = True
) -> str:
    """Sign in at ADFS and return the base64 ``SAMLResponse`` it would post to AWS."""
    import requests

    with requests.Session() as http:

        def get(target: str) -> Page:
            answer = http.get(target, timeout=timeout, verify=verify)
            return Page(answer.status_code, answer.url, answer.text)

        def post(target: str, fields: dict[str, str]) -> Page:
            answer = http.post(target, data=fields, timeout=timeout, verify=verify)
            return Page(answer.status_code, answer.url, answer.text)

        return sign_in(get, post, url, username, password)
