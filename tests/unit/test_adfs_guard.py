"""The ADFS client's SSRF guard: each refusal, before any byte is sent (no socket is opened here)."""

from __future__ import annotations

import pytest

from chalicelib.adapters.adfs_http import GuardedHttp, Sender
from chalicelib.domain.errors import InvalidRequest


def guard(allowed: set[str], answers: dict[str, list[str]], sender: Sender | None = None) -> GuardedHttp:
    return GuardedHttp(frozenset(allowed), resolver=lambda host, port: answers[host], sender=sender)


@pytest.mark.parametrize(
    ("url", "allowed", "answers", "reason"),
    [
        (
            "http://adfs.example.com/adfs",
            {"adfs.example.com"},
            {"adfs.example.com": ["203.0.113.5"]},
            "https",
        ),
        (
            "https://evil.example.com/adfs",
            {"adfs.example.com"},
            {"evil.example.com": ["203.0.113.5"]},
            "not on",
        ),
        ("https://adfs.example.com/", {"adfs.example.com"}, {"adfs.example.com": ["127.0.0.1"]}, "loopback"),
        (
            "https://adfs.example.com/",
            {"adfs.example.com"},
            {"adfs.example.com": ["169.254.169.254"]},
            "metadata",
        ),
        ("https://adfs.example.com/", {"adfs.example.com"}, {"adfs.example.com": ["::1"]}, "loopback"),
        ("https://adfs.example.com/", {"adfs.example.com"}, {"adfs.example.com": ["fe80::1"]}, "link-local"),
        # the same addresses written as IPv4-mapped IPv6 (an AAAA record can answer them)
        (
            "https://adfs.example.com/",
            {"adfs.example.com"},
            {"adfs.example.com": ["::ffff:169.254.169.254"]},
            "metadata",
        ),
        (
            "https://adfs.example.com/",
            {"adfs.example.com"},
            {"adfs.example.com": ["::ffff:127.0.0.1"]},
            "loopback",
        ),
        ("https://[adfs.example.com/", {"adfs.example.com"}, {}, "well-formed"),
        (
            "https://adfs.example.com/",
            {"adfs.example.com"},
            {"adfs.example.com": ["203.0.113.5", "10.0.0.1", "127.0.0.1"]},
            "loopback",
        ),
        (
            "https://169.254.169.254/latest/",
            {"adfs.example.com"},
            {"169.254.169.254": ["169.254.169.254"]},
            "not on",
        ),
        (
            "https://user:pw@adfs.example.com/",
            {"adfs.example.com"},
            {"adfs.example.com": ["203.0.113.5"]},
            "user name",
        ),
        (
            "https://adfs.example.com:8443/",
            {"adfs.example.com:443"},
            {"adfs.example.com": ["203.0.113.5"]},
            "not on",
        ),
    ],
)
def test_refused_before_any_connection(url, allowed, answers, reason) -> None:
    with pytest.raises(InvalidRequest) as refused:
        guard(allowed, answers).check(url)
    assert refused.value.code == "ADFS_URL_REFUSED"
    assert reason in refused.value.message


def test_allowed_hosts_and_addresses_the_allow_list_names() -> None:
    assert guard({"adfs.example.com"}, {"adfs.example.com": ["10.1.2.3"]}).check(
        "https://adfs.example.com/x"
    ) == (
        "adfs.example.com",
        443,
        "10.1.2.3",
    )
    local = guard({"127.0.0.1:9443"}, {"127.0.0.1": ["127.0.0.1"]})
    assert local.check("https://127.0.0.1:9443/adfs") == ("127.0.0.1", 9443, "127.0.0.1")


class answering:  # used as a function: answering(answer, ...)
    """A sender that answers ``answers`` in turn, one a request, and no more; it opens no socket.
    ``left``: the answers no request took yet."""

    def __init__(self, *answers: tuple[int, str | None, str]) -> None:
        self.left = list(answers)

    def __call__(self, *request: object) -> tuple[int, str | None, str]:
        assert self.left, f"a request past the answers given: {request}"
        return self.left.pop(0)


def test_no_redirect_to_another_host_and_a_size_cap() -> None:
    resolves = {"adfs.example.com": ["203.0.113.5"]}
    client = guard({"adfs.example.com"}, resolves, answering((302, "https://evil.example.com/", "")))
    with pytest.raises(InvalidRequest, match="redirected to another host"):
        client.get("https://adfs.example.com/adfs")
    client = guard(
        {"adfs.example.com"}, resolves, answering((302, "/adfs/ls/next", ""), (200, None, "<html></html>"))
    )
    assert client.get("https://adfs.example.com/adfs").url == "https://adfs.example.com/adfs/ls/next"
    loop = answering(*[(302, "/again", "")] * 4)  # the request and its 3 redirects, then the refusal
    client = guard({"adfs.example.com"}, resolves, loop)
    with pytest.raises(InvalidRequest, match="more than 3 times"):
        client.get("https://adfs.example.com/adfs")
    assert loop.left == []  # 4 requests sent: no fewer, and (answering refuses a 5th) no more


def test_an_answer_over_the_cap_is_refused_over_real_tls(tmp_path) -> None:
    from localaws.adfs import AdfsProvider

    with AdfsProvider({}, tls_dir=str(tmp_path)) as adfs:
        client = GuardedHttp(frozenset({adfs.host_port}), ca_file=adfs.ca_file, max_bytes=100)
        with pytest.raises(InvalidRequest, match="more than 100 bytes"):
            client.get(adfs.sign_on_url)
        roomy = GuardedHttp(frozenset({adfs.host_port}), ca_file=adfs.ca_file)
        assert "UserName" in roomy.get(adfs.sign_on_url).text


def test_allowed_judges_the_url_without_resolving_its_host() -> None:
    def no_lookup(host: str, port: int) -> list[str]:
        raise AssertionError(f"resolved {host}")

    http = GuardedHttp(frozenset({"adfs.example.com", "sts.example.com:8443"}), resolver=no_lookup)
    assert http.allowed("https://ADFS.example.com./adfs/ls/") == ("adfs.example.com", 443)
    assert http.allowed("https://sts.example.com:8443/") == ("sts.example.com", 8443)
    for url in ("http://adfs.example.com/", "https://sts.example.com/", "https://u:p@adfs.example.com/"):
        with pytest.raises(InvalidRequest) as refused:
            http.allowed(url)
        assert refused.value.code == "ADFS_URL_REFUSED"
