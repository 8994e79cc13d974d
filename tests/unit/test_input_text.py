"""Caller text and page tokens, without any I/O: what is refused and why (issue 13 A.1, A.2)."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from chalicelib.api.schemas import DeploymentQuery, TargetCreate
from chalicelib.domain.automation import parse_s3_url, topic_account
from chalicelib.domain.errors import InvalidRequest, UnprocessableRequest
from chalicelib.domain.paging import decode_token, encode_token
from chalicelib.domain.text import multi_line, single_line, whole_number

ARABIC_ACCOUNT = "\u0661" * 12  # ARABIC-INDIC DIGIT ONE: Python's and Rust's \d both take it
TARGET = {
    "name": "team-a",
    "account_id": "111111111111",
    "role_arn": "arn:aws:iam::111111111111:role/NexusDeploymentRole",
    "regions": ["us-east-1"],
}


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_page_token_nested_thousands_deep_is_invalid_not_a_crash() -> None:
    for nested in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000):
        with pytest.raises(InvalidRequest) as raised:
            decode_token(_token(nested), "TENANT#t", "TARGET#")
        assert raised.value.code == "INVALID_NEXT_TOKEN"
    good = encode_token({"pk": "TENANT#t", "sk": "TARGET#x"})
    assert decode_token(good, "TENANT#t", "TARGET#") == {"pk": "TENANT#t", "sk": "TARGET#x"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account_id": ARABIC_ACCOUNT, "role_arn": f"arn:aws:iam::{ARABIC_ACCOUNT}:role/R"}, "account_id"),
        ({"role_arn": "arn:aws:iam::111111111111:role/NexusDeploymentRole\n"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::111111111111:role/R\u00e9le"}, "role_arn"),  # \w would take it
        ({"account_id": "111111111111\n"}, "account_id"),
        ({"name": "team\x00a"}, "name"),
        ({"name": "team\ud800"}, "name"),
        ({"name": "team\u0085a"}, "name"),  # C1 (NEXT LINE)
    ],
)
def test_targets_take_ascii_digits_whole_values_and_no_control_characters(change, field) -> None:
    with pytest.raises(ValidationError) as raised:
        TargetCreate.model_validate({**TARGET, **change})
    assert field in {str(e["loc"][0]) for e in raised.value.errors()}


def test_query_numbers_are_ascii_digits_only() -> None:
    assert DeploymentQuery.model_validate({"limit": "20"}).limit == 20
    for bad in ("\u0661\u0662", "\uff11\uff12", " 12", "12\n", "1_2", "+12", ""):
        with pytest.raises(ValidationError):
            DeploymentQuery.model_validate({"limit": bad})
    assert whole_number(7) == 7  # a number built in Python, not from a query string


def test_one_line_and_multi_line_text() -> None:
    assert single_line("plain text, with unicode: \u00e9\u4e2d") == "plain text, with unicode: \u00e9\u4e2d"
    assert multi_line("-----BEGIN\r\nabc\tdef\n-----END") == "-----BEGIN\r\nabc\tdef\n-----END"
    for bad in ("a\nb", "a\tb", "a\x7fb", "a\x9fb", "a\udfffb"):
        with pytest.raises(ValueError, match=r"U\+"):
            single_line(bad)
    for bad in ("a\x00b", "a\x0bb", "a\x1bb", "a\ud800b"):
        with pytest.raises(ValueError, match=r"U\+"):
            multi_line(bad)


def test_s3_urls_and_topic_arns_match_whole_and_in_ascii() -> None:
    assert parse_s3_url("s3://bucket/key.json").key == "key.json"
    for bad in ("s3://bucket/key.json\n", "s3://bucket/ke\x00y", "s3://bucket/key\x7f"):
        with pytest.raises(UnprocessableRequest):
            parse_s3_url(bad)
    assert topic_account("arn:aws:sns:us-east-1:111111111111:t") == "111111111111"
    assert topic_account("arn:aws:sns:us-east-1:111111111111:t\n") is None
    assert topic_account(f"arn:aws:sns:us-east-1:{ARABIC_ACCOUNT}:t") is None
