"""The service's HTTP client for ADFS: it fetches a URL a user typed, so it guards against SSRF.

Every request (the sign-on page, the form post, each redirect) is checked before it is sent:

* ``https`` only;
* the host (``host`` or ``host:port``) must be on the operator's allow-list (``NEXUS_ADFS_HOSTS``);
* the host is resolved once, here; every address must be public or private, never loopback,
  link-local (the instance metadata service lives there), unspecified, multicast or a cloud metadata
  address, unless the allow-list names that address itself. The connection then goes to the checked
  address (TLS still verifies the certificate against the host name), so DNS cannot answer differently
  between the check and the connection;
* redirects are followed only to the same scheme, host and port (at most 3);
* each request has a short timeout, and an answer larger than the cap is refused unread.

A refusal is a 400 ``ADFS_URL_REFUSED`` that says which rule refused, before any byte is sent.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import quote, urlencode, urljoin, urlsplit

from chalicelib.domain.adfs import Page
from chalicelib.domain.errors import InvalidRequest, TransientAwsError

MAX_REDIRECTS = 3
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
Resolver = Callable[[str, int], list[str]]
# Sends one checked request: (method, url, host, port, address, body) -> (status, Location, text).
Sender = Callable[[str, str, str, int, str, bytes | None], tuple[int, str | None, str]]


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def refused(message: str) -> InvalidRequest:
    return InvalidRequest(
        message,
        code="ADFS_URL_REFUSED",
        hint="Use the https:// ADFS URL your administrator gave you; the service reaches only the ADFS hosts "
        "its operator allows (NEXUS_ADFS_HOSTS).",
    )


def forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, link-local (the metadata service), unspecified, multicast or a metadata address, also
    when written as an IPv4-mapped IPv6 address (::ffff:169.254.169.254)."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address in METADATA_ADDRESSES
    )


# What ``quote`` leaves as it is in a request path: the URL's own delimiters and escapes.
URL_SAFE = "/%?&=:@!$'()*+,;~"


class PinnedHttps(http.client.HTTPSConnection):
    """HTTPS to a checked address, with SNI and certificate checks against the host name."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


@dataclass
class GuardedHttp:
    allowed_hosts: frozenset[str]
    ca_file: str | None = None
    timeout_seconds: float = 5.0
    max_bytes: int = 512 * 1024
    resolver: Resolver = _resolve
    # None: over a TLS connection to the checked address (``_send``), which keeps the session's cookies.
    sender: Sender | None = None
    _cookies: dict[str, str] = field(default_factory=dict)

    @classmethod
    def allowing(cls, hosts: Iterable[str], **kwargs: object) -> GuardedHttp:
        return cls(frozenset(h.strip().lower().rstrip(".") for h in hosts if h.strip()), **kwargs)  # type: ignore[arg-type]

    # -- the checks ---------------------------------------------------------------------------------
    def allowed(self, url: str) -> tuple[str, int]:
        """(host, port) of a URL this client may reach, judged without the network, or ADFS_URL_REFUSED:
        https only, a host of the allow-list, no user name or password."""
        try:
            parts = urlsplit(url)
        except ValueError:
            raise refused("The ADFS URL is not a well-formed URL.") from None
        if parts.scheme != "https":
            raise refused("The ADFS URL must start with https://.")
        host = (parts.hostname or "").lower().rstrip(".")
        try:
            port = parts.port or 443
        except ValueError:
            raise refused("The ADFS URL has an invalid port.") from None
        if not host or parts.username or parts.password:
            raise refused("The ADFS URL must name a host (and no user name or password).")
        if host not in self.allowed_hosts and f"{host}:{port}" not in self.allowed_hosts:
            raise refused(f"The host {host} is not on this service's list of ADFS hosts.")
        return host, port

    def check(self, url: str) -> tuple[str, int, str]:
        """(host, port, address to connect to), or ADFS_URL_REFUSED: ``allowed``, then what the host
        resolves to (no loopback, link-local or metadata address unless the allow-list names it)."""
        host, port = self.allowed(url)
        try:
            addresses = [ipaddress.ip_address(a) for a in self.resolver(host, port)]
        except (OSError, ValueError):
            raise refused(f"The host {host} does not resolve.") from None
        if not addresses:
            raise refused(f"The host {host} does not resolve.")
        for address in addresses:
            named = str(address) in self.allowed_hosts or f"{address}:{port}" in self.allowed_hosts
            if forbidden_address(address) and not named:
                raise refused(
                    f"The host {host} resolves to {address}, a loopback, link-local or metadata address."
                )
        return host, port, str(addresses[0])

    # -- requests -----------------------------------------------------------------------------------
    def get(self, url: str) -> Page:
        return self._request("GET", url, None)

    def post(self, url: str, fields: dict[str, str]) -> Page:
        return self._request("POST", url, urlencode(fields).encode())

    def _request(self, method: str, url: str, body: bytes | None) -> Page:
        origin = urlsplit(url)
        send = self.sender or self._send
        for _ in range(MAX_REDIRECTS + 1):
            host, port, address = self.check(url)
            status, location, text = send(method, url, host, port, address, body)
            if status not in (301, 302, 303, 307, 308) or not location:
                return Page(status, url, text)
            target = urljoin(url, location)
            moved = urlsplit(target)
            if (moved.scheme, moved.hostname, moved.port) != (origin.scheme, origin.hostname, origin.port):
                raise refused("ADFS redirected to another host; the service follows no such redirect.")
            url = target
            if status in (301, 302, 303):
                method, body = "GET", None
        raise refused(f"ADFS redirected more than {MAX_REDIRECTS} times.")

    def _send(
        self, method: str, url: str, host: str, port: int, address: str, body: bytes | None
    ) -> tuple[int, str | None, str]:
        context = ssl.create_default_context(cafile=self.ca_file)
        connection = PinnedHttps(host, port, address, context, self.timeout_seconds)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        path = quote(path, safe=URL_SAFE)  # a form action may hold non-ASCII text
        headers = {"Host": host if port == 443 else f"{host}:{port}", "Accept": "text/html"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(self.max_bytes + 1)
        except (OSError, http.client.HTTPException) as error:
            raise TransientAwsError(
                f"ADFS at {host} did not answer: {type(error).__name__}",
                code="ADFS_UNREACHABLE",
                hint="Check the ADFS URL and that the service can reach it; then try again.",
            ) from None
        finally:
            connection.close()
        if len(data) > self.max_bytes:
            raise refused(f"ADFS answered more than {self.max_bytes} bytes; the service reads no more.")
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            self._cookies.update({name: morsel.value for name, morsel in cookie.items()})
        return response.status, response.headers.get("Location"), data.decode("utf-8", errors="replace")
