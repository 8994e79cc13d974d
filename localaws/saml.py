"""``sts:AssumeRoleWithSAML`` that checks what AWS checks, for the embedded local AWS (moto 5.2.5).

Why this exists
---------------
moto's ``AssumeRoleWithSAML`` hands out credentials for the first role named in any assertion: it
checks no signature, no SAML provider, no trust policy and no expiry, and it breaks on an assertion
that offers more than one role (ADFS's normal case). The ADFS sign-in method of the ``nexus`` CLI
would then "pass" with a forged or stale assertion. ``install()`` replaces moto's response method so
that, as on AWS:

1. ``PrincipalArn`` must name an existing ``iam:CreateSAMLProvider`` provider in the role's account,
   else ``InvalidIdentityToken`` "Specified provider doesn't exist.";
2. the assertion must carry an enveloped XML signature that verifies (``signxml``) against a signing
   certificate of that provider's metadata document, else ``InvalidIdentityToken``; everything read
   afterwards comes from the *signed* element only (no signature wrapping);
3. ``Conditions``/``SubjectConfirmationData`` ``NotBefore``/``NotOnOrAfter`` hold at ``localaws.sts.CLOCK``
   (else ``ExpiredTokenException`` "Token is expired") and the audience is AWS's;
4. the ``https://aws.amazon.com/SAML/Attributes/Role`` attribute holds the ``RoleArn,PrincipalArn`` pair
   (either order) and ``RoleSessionName`` is present, else ``AccessDenied``/``InvalidIdentityToken``;
5. the role exists and its trust policy allows ``sts:AssumeRoleWithSAML`` for
   ``{"Federated": PrincipalArn}`` (Deny wins; conditions on ``SAML:aud``, ``SAML:iss``, ``SAML:sub``),
   else ``AccessDenied`` "Not authorized to perform sts:AssumeRoleWithSAML";
6. the session lasts ``DurationSeconds`` or the ``SessionDuration`` attribute (default 3600), capped by
   the role's ``MaxSessionDuration``, and expires like every other localaws STS session.

Not modelled: encrypted assertions, ``SAML:namequalifier``, session tags and source identity.
``check_moto_internals()`` fails loudly if the moto internals used here change.
"""

from __future__ import annotations

import base64
import datetime
import inspect
from collections.abc import Callable
from typing import Any

from localaws.patching import Patcher, source
from localaws.policy import federated_trust_allows
from localaws.sts import CLOCK, AwsHttpError, _find_role

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.saml")
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
SESSION_NAME_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SESSION_DURATION_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/SessionDuration"
AUDIENCES = frozenset({"urn:amazon:webservices", "https://signin.aws.amazon.com/saml"})
DEFAULT_DURATION = 3600


def _invalid_token(message: str) -> AwsHttpError:
    return AwsHttpError(400, "InvalidIdentityToken", message)


def _not_authorized() -> AwsHttpError:
    return AwsHttpError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithSAML")


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(datetime.UTC).replace(tzinfo=None)


def _provider(principal_arn: str) -> Any:
    from moto.iam.models import iam_backends

    parts = principal_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("saml-provider/"):
        raise _invalid_token("Specified provider doesn't exist.")
    backend = iam_backends[parts[4]][parts[1]]
    for provider in backend.list_saml_providers():
        if provider.arn == principal_arn:
            return provider
    raise _invalid_token("Specified provider doesn't exist.")


def signing_certificates(metadata: str) -> list[str]:
    """PEM certificates of the ``use="signing"`` (or unqualified) keys in IdP metadata."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(metadata.encode(), parser)
    pems = []
    for descriptor in root.iter(f"{{{MD}}}KeyDescriptor"):
        if descriptor.get("use", "signing") != "signing":
            continue
        for cert in descriptor.iter(f"{{{DS}}}X509Certificate"):
            body = "".join((cert.text or "").split())
            lines = [body[i : i + 64] for i in range(0, len(body), 64)]
            pems.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n")
    return pems


def verified_assertion(saml_b64: str, certificates: list[str]) -> Any:
    """The signed ``Assertion`` element (lxml) of a base64 SAML response, or InvalidIdentityToken."""
    from lxml import etree
    from signxml.exceptions import InvalidInput, InvalidSignature
    from signxml.verifier import XMLVerifier

    try:
        document = base64.b64decode(saml_b64, validate=True)
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(document, parser)
    except (ValueError, etree.XMLSyntaxError):
        raise _invalid_token("The SAML assertion is not valid base64-encoded XML.") from None
    for pem in certificates:
        try:
            result = XMLVerifier().verify(root, x509_cert=pem, id_attribute="ID")
        except (InvalidSignature, InvalidInput):
            continue
        signed = result.signed_xml if not isinstance(result, list) else None
        if signed is not None and signed.tag == f"{{{SAML}}}Assertion":
            return signed
    raise _invalid_token("The SAML assertion's signature does not verify with the provider's certificate.")


def _attribute_values(assertion: Any, name: str) -> list[str]:
    values: list[str] = []
    for attribute in assertion.iter(f"{{{SAML}}}Attribute"):
        if attribute.get("Name") == name:
            values.extend((v.text or "").strip() for v in attribute.iter(f"{{{SAML}}}AttributeValue"))
    return values


def _check_validity(assertion: Any) -> None:
    now = CLOCK.now()
    conditions = assertion.find(f"{{{SAML}}}Conditions")
    windows = [conditions] if conditions is not None else []
    windows += list(assertion.iter(f"{{{SAML}}}SubjectConfirmationData"))
    for element in windows:
        not_before = _parse_time(element.get("NotBefore"))
        not_after = _parse_time(element.get("NotOnOrAfter"))
        if not_before is not None and now < not_before - datetime.timedelta(minutes=5):
            raise _invalid_token("The SAML assertion is not yet valid.")
        if not_after is not None and now >= not_after:
            raise AwsHttpError(400, "ExpiredTokenException", "Token is expired")
    audiences = {(a.text or "").strip() for a in assertion.iter(f"{{{SAML}}}Audience")}
    if audiences and not audiences & AUDIENCES:
        raise _invalid_token("The SAML assertion's audience is not AWS.")


def _role_pair_present(values: list[str], role_arn: str, principal_arn: str) -> bool:
    for value in values:
        parts = {p.strip() for p in value.split(",")}
        if parts == {role_arn, principal_arn}:
            return True
    return False


def _assume_role_with_saml(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    del original  # replaced entirely: moto verifies nothing (see the module docstring)

    def assume_role_with_saml(self: Any) -> Any:
        from moto.core.responses import ActionResult

        role_arn = str(self._get_param("RoleArn") or "")
        principal_arn = str(self._get_param("PrincipalArn") or "")
        duration_param = self._get_param("DurationSeconds")
        provider = _provider(principal_arn)
        assertion = verified_assertion(
            str(self._get_param("SAMLAssertion") or ""),
            signing_certificates(str(provider.saml_metadata_document or "")),
        )
        _check_validity(assertion)
        if not _role_pair_present(_attribute_values(assertion, ROLE_ATTRIBUTE), role_arn, principal_arn):
            raise _not_authorized()
        session_names = _attribute_values(assertion, SESSION_NAME_ATTRIBUTE)
        if not session_names or not session_names[0]:
            raise _invalid_token("The SAML assertion has no RoleSessionName attribute.")
        issuer = assertion.findtext(f"{{{SAML}}}Issuer") or ""
        subject = assertion.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") or ""
        context = {"saml:aud": "https://signin.aws.amazon.com/saml", "saml:iss": issuer, "saml:sub": subject}
        role = _find_role(role_arn)
        if role is None or not federated_trust_allows(
            role.assume_role_policy_document, principal_arn, context
        ):
            raise _not_authorized()
        durations = _attribute_values(assertion, SESSION_DURATION_ATTRIBUTE)
        duration = int(duration_param or (durations[0] if durations else DEFAULT_DURATION))
        duration = min(duration, int(role.max_session_duration or DEFAULT_DURATION))
        assumed = self.backend.assume_role(
            region_name=self.region,
            role_session_name=session_names[0],
            role_arn=str(role.arn),
            policy=None,
            duration=duration,
            external_id=None,
        )
        return ActionResult(
            {
                "Credentials": assumed,
                "AssumedRoleUser": {"AssumedRoleId": assumed.user_id, "Arn": assumed.arn},
                "PackedPolicySize": 0,
                "Subject": subject,
                "SubjectType": "persistent",
                "Issuer": issuer,
                "Audience": "https://signin.aws.amazon.com/saml",
            }
        )

    return assume_role_with_saml


def check_moto_internals() -> None:
    """Raise RuntimeError with a clear message if a moto internal that ``install()`` relies on changed."""
    from moto.iam.models import IAMBackend, SAMLProvider
    from moto.sts.models import STSBackend
    from moto.sts.responses import TokenResponse

    current = inspect.getattr_static(TokenResponse, "assume_role_with_saml", None)
    _PATCHER.expect(current is not None, "TokenResponse.assume_role_with_saml is missing")
    _PATCHER.expect(
        list(inspect.signature(current).parameters) == ["self"],
        "TokenResponse.assume_role_with_saml(self) signature",
    )
    _PATCHER.expect(
        list(inspect.signature(STSBackend.assume_role).parameters)
        == ["self", "region_name", "role_session_name", "role_arn", "policy", "duration", "external_id"],
        "STSBackend.assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id)",
    )
    _PATCHER.expect(hasattr(IAMBackend, "list_saml_providers"), "IAMBackend.list_saml_providers")
    init = source(SAMLProvider.__init__)
    _PATCHER.expect("self.saml_metadata_document" in init, "SAMLProvider.saml_metadata_document")


def install() -> None:
    """Replace moto's AssumeRoleWithSAML with the checking one (process-wide, idempotent)."""
    with _PATCHER.lock:
        check_moto_internals()
        from moto.sts.responses import TokenResponse

        _PATCHER.wrap(TokenResponse, "assume_role_with_saml", _assume_role_with_saml)
