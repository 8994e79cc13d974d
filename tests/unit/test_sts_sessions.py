"""Target sessions share the service's botocore data loader without growing it (chalicelib/adapters/sts.py)."""

from __future__ import annotations

import datetime

import boto3
from botocore.config import Config
from botocore.stub import Stubber

from chalicelib.adapters.sts import StsTargetAccess

CREDENTIALS = {
    "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
    "SecretAccessKey": "secret",
    "SessionToken": "token",
    "Expiration": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
}


def test_a_hundred_target_sessions_leave_the_shared_loaders_search_paths_as_they_were() -> None:
    """boto3 appends its data directory to a session's loader for every boto3.Session: on the one loader
    of a warm Lambda, that was one more path per step (1,003 after 1,000 sessions)."""
    service = boto3.Session(
        region_name="us-east-1", aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x"
    )
    sts = service.client("sts")
    loader = service._session.get_component("data_loader")
    paths = list(loader.search_paths)
    access = StsTargetAccess(sts, Config(), loader=loader)
    with Stubber(sts) as stub:
        for _ in range(100):
            stub.add_response("assume_role", {"Credentials": CREDENTIALS})
        sessions = [
            access.session(
                role_arn="arn:aws:iam::111111111111:role/nexus",
                external_id="ext-id",
                session_name="nexus-step",
                region="us-east-1",
            )
            for _ in range(100)
        ]
    assert loader.search_paths == paths
    # and every session still reads the shared loader's models (the point of sharing it)
    assert sessions[-1]._session.get_component("data_loader") is loader
    assert sessions[-1].client("cloudformation").meta.service_model.service_name == "cloudformation"
