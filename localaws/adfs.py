"""A test ADFS identity provider: the IdP-initiated sign-on form, real signed SAML responses.

Why this exists
---------------
The product guide's fourth sign-in method is ADFS: the operator types the ADFS URL, a user name and a
password, picks one of the AWS roles the assertion offers, and STS turns the assertion into credentials.
To test the ``nexus`` CLI's client side of that flow honestly, something must answer the way ADFS does:

* ``GET /adfs/ls/IdpInitiatedSignOn.aspx`` -> the sign-in HTML form (``UserName``, ``Password``,
  ``AuthMethod`` plus a hidden field, as ADFS 3/4 render it; the form posts back to the same page);
* ``POST`` with ``AuthMethod=FormsAuthentication`` -> a wrong user or password renders the form again
  with ADFS's ``errorText``; a right one returns the auto-post page to ``https://signin.aws.amazon.com/saml``
  holding ``<input type="hidden" name="SAMLResponse" value="BASE64">``;
* ``GET /FederationMetadata/2007-06/FederationMetadata.xml`` -> the IdP metadata with the signing
  certificate: what an administrator uploads with ``iam:CreateSAMLProvider``.

The assertion is a SAML 2.0 ``Response`` whose ``Assertion`` is signed (enveloped, RSA-SHA256, exclusive
C14N) with a key and self-signed certificate generated when the provider starts, using ``signxml``.
It carries AWS's attributes: ``https://aws.amazon.com/SAML/Attributes/Role`` (one value per role,
``role_arn,principal_arn``), ``RoleSessionName`` and optionally ``SessionDuration``; its validity
(``NotOnOrAfter``) follows ``localaws.sts.CLOCK`` so tests can let it expire.
``localaws.saml`` is the STS side that verifies it.

Usage::

    with AdfsProvider({"alice": AdfsUser("secret", [(role_arn, provider_arn)])}) as adfs:
        iam.create_saml_provider(Name="corp-adfs", SAMLMetadataDocument=adfs.metadata_xml())
        ... adfs.sign_on_url ...
"""

from __future__ import annotations

import base64
import datetime
import html
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from localaws.sts import CLOCK

__all__ = [
    "AWS_AUDIENCE",
    "AWS_SIGNIN_URL",
    "ROLE_ATTRIBUTE",
    "SIGN_ON_PATH",
    "AdfsProvider",
    "AdfsUser",
    "SigningIdentity",
]

SIGN_ON_PATH = "/adfs/ls/IdpInitiatedSignOn.aspx"
METADATA_PATH = "/FederationMetadata/2007-06/FederationMetadata.xml"
AWS_SIGNIN_URL = "https://signin.aws.amazon.com/saml"
AWS_AUDIENCE = "urn:amazon:webservices"
ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
SESSION_NAME_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SESSION_DURATION_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/SessionDuration"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
ERROR_TEXT = "Incorrect user ID or password. Type the correct user ID and password, and try again."


@dataclass(frozen=True)
class SigningIdentity:
    """An RSA key and its self-signed certificate (PEM), made fresh for each provider."""

    key_pem: bytes
    cert_pem: bytes

    @classmethod
    def generate(cls, common_name: str, ip_names: tuple[str, ...] = ()) -> SigningIdentity:
        """A fresh key and self-signed certificate; ``ip_names`` makes it a TLS server certificate for them."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
        )
        if ip_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_names]),
                critical=False,
            ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        cert = builder.sign(key, hashes.SHA256())
        return cls(
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        )

    @property
    def cert_base64(self) -> str:
        """The certificate's DER in base64, as ``X509Certificate`` elements hold it."""
        body = self.cert_pem.decode("ascii")
        return "".join(line for line in body.splitlines() if "CERTIFICATE" not in line)


@dataclass(frozen=True)
class AdfsUser:
    """A directory user: password and the (role ARN, SAML provider ARN) pairs ADFS releases for them."""

    password: str
    roles: list[tuple[str, str]] = field(default_factory=list)
    session_duration: int | None = None
    email: str | None = None  # RoleSessionName; defaults to user@<provider host>


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class AdfsProvider:
    """The IdP, served over HTTP from a daemon thread on ``host:port`` (port 0: the OS picks one)."""

    def __init__(
        self,
        users: dict[str, AdfsUser],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        assertion_seconds: int = 300,
        signing: SigningIdentity | None = None,
        tls_dir: str | None = None,
    ) -> None:
        self.users = users
        self.assertion_seconds = assertion_seconds
        self._host, self._port = host, port
        self.signing = signing or SigningIdentity.generate("ADFS Signing - localaws")
        # With tls_dir: HTTPS, with a certificate for the host written there (ca_file), as a service that
        # fetches only https:// ADFS URLs needs; without: plain HTTP, as the CLI's tests use it.
        self._tls_dir = tls_dir
        self.ca_file: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.sign_ins: list[str] = []  # user names that signed in successfully, in order

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> AdfsProvider:
        provider = self

        class Handler(_AdfsHandler):
            adfs = provider

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._port = self._server.server_address[1]
        if self._tls_dir is not None:
            import os
            import ssl

            identity = SigningIdentity.generate(self._host, ip_names=(self._host,))
            cert, key = (
                os.path.join(self._tls_dir, "adfs-cert.pem"),
                os.path.join(self._tls_dir, "adfs-key.pem"),
            )
            with open(cert, "wb") as out:
                out.write(identity.cert_pem)
            with open(key, "wb") as out:
                out.write(identity.key_pem)
            os.chmod(key, 0o600)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.ca_file = cert
        self._thread = threading.Thread(target=self._server.serve_forever, name="localaws-adfs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AdfsProvider:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        scheme = "https" if self._tls_dir is not None else "http"
        return f"{scheme}://{self._host}:{self._port}"

    @property
    def host_port(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def sign_on_url(self) -> str:
        return self.base_url + SIGN_ON_PATH

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/adfs/services/trust"

    # -- documents ---------------------------------------------------------------------------------
    def metadata_xml(self) -> str:
        """IdP metadata with the signing certificate (for ``iam:CreateSAMLProvider``)."""
        return (
            f'<?xml version="1.0" encoding="utf-8"?>'
            f'<EntityDescriptor xmlns="{MD}" entityID="{html.escape(self.issuer)}" ID="_{uuid.uuid4()}">'
            f'<IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">'
            f'<KeyDescriptor use="signing"><KeyInfo xmlns="{DS}"><X509Data>'
            f"<X509Certificate>{self.signing.cert_base64}</X509Certificate>"
            f"</X509Data></KeyInfo></KeyDescriptor>"
            f"<NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</NameIDFormat>"
            f'<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="{html.escape(self.base_url)}/adfs/ls/"/>'
            f"</IDPSSODescriptor></EntityDescriptor>"
        )

    def saml_response(self, username: str) -> bytes:
        """The signed SAML ``Response`` (XML bytes) ADFS would post to AWS for ``username``."""
        from lxml import etree
        from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
        from signxml.signer import XMLSigner

        user = self.users[username]
        now = CLOCK.now().replace(tzinfo=datetime.UTC)
        until = now + datetime.timedelta(seconds=self.assertion_seconds)
        session_name = user.email or f"{username}@{urlsplit(self.base_url).hostname}"
        values = "".join(
            f"<AttributeValue>{html.escape(role)},{html.escape(principal)}</AttributeValue>"
            for role, principal in user.roles
        )
        duration = (
            f'<Attribute Name="{SESSION_DURATION_ATTRIBUTE}"><AttributeValue>{user.session_duration}'
            "</AttributeValue></Attribute>"
            if user.session_duration
            else ""
        )
        assertion_id = f"_{uuid.uuid4()}"
        issuer = html.escape(self.issuer)
        document = (
            f'<samlp:Response xmlns:samlp="{SAMLP}" ID="_{uuid.uuid4()}" Version="2.0" '
            f'IssueInstant="{_iso(now)}" Destination="{AWS_SIGNIN_URL}" Consent="urn:oasis:names:tc:SAML:2.0:'
            f'consent:unspecified"><Issuer xmlns="{SAML}">{issuer}</Issuer>'
            f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f'<Assertion xmlns="{SAML}" ID="{assertion_id}" IssueInstant="{_iso(now)}" Version="2.0">'
            f"<Issuer>{issuer}</Issuer>"
            f'<ds:Signature xmlns:ds="{DS}" Id="placeholder"></ds:Signature>'
            f'<Subject><NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">'
            f"{html.escape(username)}</NameID>"
            f'<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<SubjectConfirmationData NotOnOrAfter="{_iso(until)}" Recipient="{AWS_SIGNIN_URL}"/>'
            f"</SubjectConfirmation></Subject>"
            f'<Conditions NotBefore="{_iso(now)}" NotOnOrAfter="{_iso(until)}">'
            f"<AudienceRestriction><Audience>{AWS_AUDIENCE}</Audience></AudienceRestriction></Conditions>"
            f'<AttributeStatement><Attribute Name="{SESSION_NAME_ATTRIBUTE}"><AttributeValue>'
            f"{html.escape(session_name)}</AttributeValue></Attribute>"
            f'<Attribute Name="{ROLE_ATTRIBUTE}">{values}</Attribute>{duration}</AttributeStatement>'
            f'<AuthnStatement AuthnInstant="{_iso(now)}" SessionIndex="{assertion_id}"><AuthnContext>'
            f"<AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            f"</AuthnContextClassRef></AuthnContext></AuthnStatement></Assertion></samlp:Response>"
        )
        root = etree.fromstring(document.encode())
        assertion = root.find(f"{{{SAML}}}Assertion")
        signer = XMLSigner(
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        signed = signer.sign(
            assertion, key=self.signing.key_pem, cert=self.signing.cert_pem.decode(), id_attribute="ID"
        )
        root.replace(assertion, signed)
        result: bytes = etree.tostring(root)
        return result


def _form_page(context: str, error: str | None = None) -> str:
    error_html = (
        f'<span id="errorText" class="fieldMargin error">{html.escape(error)}</span>' if error else ""
    )
    return (
        "<!DOCTYPE html><html><head><title>Sign In</title></head><body>"
        f'<form method="post" id="loginForm" autocomplete="off" action="{SIGN_ON_PATH}?client-request-id='
        f'{context}">'
        '<div id="error" class="fieldMargin error smallText">'
        f"{error_html}</div>"
        '<input id="userNameInput" name="UserName" type="email" value="" autocomplete="off"/>'
        '<input id="passwordInput" name="Password" type="password" autocomplete="off"/>'
        '<input id="kmsiInput" type="checkbox" name="Kmsi" value="true"/>'
        '<input id="optionForms" type="hidden" name="AuthMethod" value="FormsAuthentication"/>'
        f'<input type="hidden" name="Context" value="{context}"/>'
        '<span id="submitButton" role="button" onclick="return Login.submitLoginRequest();">Sign in</span>'
        "</form></body></html>"
    )


def _auto_post_page(saml_response: bytes) -> str:
    value = base64.b64encode(saml_response).decode("ascii")
    return (
        "<!DOCTYPE html><html><head><title>Working...</title></head><body>"
        f'<form method="POST" name="hiddenform" action="{AWS_SIGNIN_URL}">'
        f'<input type="hidden" name="SAMLResponse" value="{value}" />'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit" /></noscript></form>'
        "<script language=\"javascript\">window.setTimeout('document.forms[0].submit()', 0);</script>"
        "</body></html>"
    )


_USER_DOMAIN = re.compile(r"^(?:[^\\]+\\)?([^@]+)(?:@.*)?$")


class _AdfsHandler(BaseHTTPRequestHandler):
    adfs: AdfsProvider
    server_version = "Microsoft-HTTPAPI/2.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a request line carries no secret, but test output should stay readable."""

    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == SIGN_ON_PATH:
            self._send(200, _form_page(secrets.token_hex(8)))
        elif path == METADATA_PATH:
            self._send(200, self.adfs.metadata_xml(), "application/samlmetadata+xml")
        else:
            self._send(404, "<html><body>Not found</body></html>")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != SIGN_ON_PATH:
            self._send(404, "<html><body>Not found</body></html>")
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {
            k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()
        }
        context = form.get("Context") or secrets.token_hex(8)
        if form.get("AuthMethod") != "FormsAuthentication":
            self._send(200, _form_page(context, "The selected authentication method is not available."))
            return
        match = _USER_DOMAIN.match(form.get("UserName", ""))
        username = match.group(1) if match else ""
        user = self.adfs.users.get(username)
        if user is None or not secrets.compare_digest(user.password, form.get("Password", "")):
            self._send(200, _form_page(context, ERROR_TEXT))
            return
        self.adfs.sign_ins.append(username)
        self._send(200, _auto_post_page(self.adfs.saml_response(username)))
