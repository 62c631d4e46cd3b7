"""Anonymous callers are keyed by client IP; X-Forwarded-For is believed only from RATE_LIMIT_TRUSTED_PROXIES."""

import pytest

PROXIES = ["10.0.0.0/8", "2001:db8:cafe::1"]


def remaining(response) -> int:
    return int(response["X-RateLimit-Remaining"])


@pytest.fixture
def behind_proxies(backend, rate_limits):
    rate_limits.RATE_LIMIT_TRUSTED_PROXIES = PROXIES
    return rate_limits


def test_the_client_behind_a_trusted_proxy_is_the_forwarded_address(api, behind_proxies):
    via_one_proxy = api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")
    via_another = api.get("/regions", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.7")
    direct = api.get("/regions", REMOTE_ADDR="203.0.113.7")

    assert [remaining(r) for r in (via_one_proxy, via_another, direct)] == [59, 58, 57]


def test_clients_behind_the_same_proxy_have_their_own_pools(api, behind_proxies):
    api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")

    other = api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.20")

    assert remaining(other) == 59


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(api, behind_proxies):
    api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")

    spoofed = api.get("/regions", REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR="203.0.113.7")
    again = api.get("/regions", REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert (remaining(spoofed), remaining(again)) == (59, 58)


def test_x_forwarded_for_is_ignored_when_no_proxy_is_trusted(api, backend, rate_limits):
    api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")

    response = api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert remaining(response) == 58


def test_a_forged_leftmost_hop_does_not_escape_the_pool(api, behind_proxies):
    api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")

    forged = api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")

    assert remaining(forged) == 58


def test_trusted_hops_are_skipped_from_the_right(api, behind_proxies):
    api.get("/regions", REMOTE_ADDR="203.0.113.7")

    chained = api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7, 10.9.9.9, 10.0.0.1")

    assert remaining(chained) == 58


def test_a_garbled_x_forwarded_for_counts_against_the_proxy(api, behind_proxies):
    api.get("/regions", REMOTE_ADDR="10.0.0.5")

    garbled = api.get("/regions", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="not-an-ip")

    assert remaining(garbled) == 58


def test_a_single_trusted_ipv6_proxy_is_believed(api, behind_proxies):
    api.get("/regions", REMOTE_ADDR="2001:db8:cafe::1", HTTP_X_FORWARDED_FOR="2001:db8:beef::42")

    direct = api.get("/regions", REMOTE_ADDR="2001:db8:beef::42")

    assert remaining(direct) == 58
