"""A KMS key's signing key pair is made when first used (localaws/kms.py), and works as before."""

from __future__ import annotations

from typing import Any

import pytest

from localaws import kms
from localaws.environment import LocalAws


def test_canary_the_key_generation_it_defers_is_still_there() -> None:
    kms.check_moto_internals()


def test_a_key_that_never_signs_makes_no_rsa_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa  # what moto.kms.utils calls

    made: list[Any] = []
    generate = rsa.generate_private_key

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return generate(*args, **kwargs)

    with LocalAws() as aws:
        monkeypatch.setattr(rsa, "generate_private_key", counted)
        client = aws.central_session().client("kms")
        key_id = client.create_key(Description="symmetric")["KeyMetadata"]["KeyId"]
        client.encrypt(KeyId=key_id, Plaintext=b"secret")
        assert made == []
        signing = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
        assert made == []
        client.get_public_key(KeyId=signing)
        assert len(made) == 1


def test_signatures_verify_and_a_replica_shares_its_primary_key_pair() -> None:
    with LocalAws() as aws:
        client = aws.central_session().client("kms", region_name="us-east-1")
        key_id = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048", MultiRegion=True)[
            "KeyMetadata"
        ]["KeyId"]
        signature = client.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")[
            "Signature"
        ]
        client.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")
        replica = aws.central_session().client("kms", region_name="eu-west-1")
        for kms_client in (client, replica):
            assert kms_client.verify(
                KeyId=key_id, Message=b"m", Signature=signature, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
            )["SignatureValid"]
        assert (
            client.get_public_key(KeyId=key_id)["PublicKey"]
            == replica.get_public_key(KeyId=key_id)["PublicKey"]
        )
        assert not client.verify(
            KeyId=key_id, Message=b"other", Signature=signature, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
        )["SignatureValid"]
