"""keeper/outbound.py against a real receiver on 127.0.0.1: where requests to a caller's URL may go, and how
little a receiver can make Keeper wait for or read."""

import socket

import pytest

from keeper.outbound import DestinationRefused, GuardedSession, OutboundPolicy, check_destination
from tests.fakes import FakeReceiver

LOCAL = OutboundPolicy.of(["127.0.0.1/32"], allow_http=True)
PUBLIC_ONLY = OutboundPolicy(allow_http=True)


def post(policy: OutboundPolicy, url: str, body: bytes = b"{}"):
    session = GuardedSession(policy)
    try:
        return session.post(url, body, {"Content-Type": "application/json"})
    finally:
        session.close()


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("172.16.0.9", "172.16.0.9"),
        ("192.168.1.1", "192.168.1.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("100.64.0.1", "100.64.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("224.0.0.1", "224.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("[fe80::1]", "fe80::1"),
        ("[fd00::1]", "fd00::1"),
    ],
)
def test_private_destinations_are_refused_when_saved(host, address):
    with pytest.raises(DestinationRefused) as refused:
        check_destination(f"https://{host}/hook", PUBLIC_ONLY)
    assert f"resolves to {address}, a" in str(refused.value)
    assert "does not send requests to private" in str(refused.value)


def test_public_address_passes_the_check():
    check_destination("https://93.184.216.34/hook", PUBLIC_ONLY)


@pytest.mark.parametrize(
    ("url", "policy", "message"),
    [
        ("http://93.184.216.34/hook", OutboundPolicy(), "must start with https://"),
        ("ftp://93.184.216.34/hook", PUBLIC_ONLY, "must start with https:// or http://"),
        ("https://user:pw@93.184.216.34/hook", PUBLIC_ONLY, "user name or password"),
        ("https:///hook", PUBLIC_ONLY, "no host"),
        ("https://93.184.216.34:99999/hook", PUBLIC_ONLY, "Not a valid URL"),
        ("https://no-such-host.invalid/hook", PUBLIC_ONLY, "does not resolve"),
    ],
)
def test_malformed_or_unresolvable_urls_are_refused(url, policy, message):
    with pytest.raises(DestinationRefused, match=message):
        check_destination(url, policy)


def test_delivers_to_an_allowed_network(receiver: FakeReceiver):
    answer = post(LOCAL, receiver.url(), b'{"type": "ping"}')
    assert answer.succeeded and answer.status == 200 and answer.excerpt == b"oo" and not answer.error
    assert [r.body for r in receiver.received] == [b'{"type": "ping"}']
    assert receiver.received[0].headers["content-type"] == "application/json"


def test_a_private_destination_is_refused_at_connect_time(receiver: FakeReceiver):
    for url in (receiver.url(), f"http://localhost:{receiver.port}/hook"):
        answer = post(PUBLIC_ONLY, url)
        assert answer.status is None and not answer.succeeded
        assert "127.0.0.1, a loopback address" in answer.error
    assert receiver.received == []


def test_a_name_rebound_to_a_private_address_after_the_check_is_refused(receiver: FakeReceiver, monkeypatch):
    """DNS rebinding: public when the destination is saved, 127.0.0.1 when Keeper connects."""
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])

    def rebinding(host, port, *args, **kwargs):
        if host == "hooks.rebind.test":
            address = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://hooks.rebind.test:{receiver.port}/hook"
    check_destination(url, PUBLIC_ONLY)
    answer = post(PUBLIC_ONLY, url)
    assert answer.status is None and "127.0.0.1, a loopback address" in answer.error
    assert receiver.received == []


def test_redirects_are_not_followed(receiver: FakeReceiver):
    second = FakeReceiver()
    second.start()
    try:
        receiver.redirect_to = second.url("/elsewhere")
        answer = post(LOCAL, receiver.url())
        assert answer.status == 307 and not answer.succeeded
        assert len(receiver.received) == 1 and second.received == []
    finally:
        second.stop()


def test_a_hanging_receiver_is_given_up_on(receiver: FakeReceiver):
    receiver.hang()
    answer = post(OutboundPolicy.of(["127.0.0.1/32"], allow_http=True, read_timeout=0.3), receiver.url())
    assert answer.status is None and answer.error == "Timed out."
    assert len(receiver.received) == 1  # it got the request; Keeper did not wait for its answer


def test_a_slow_drip_answer_is_cut_at_the_total_time(receiver: FakeReceiver):
    receiver.answer_bytes, receiver.drip = 10_000, 0.05
    policy = OutboundPolicy.of(["127.0.0.1/32"], allow_http=True, total_timeout=0.3)
    answer = post(policy, receiver.url())
    assert answer.status == 200
    assert answer.error == "The answer took longer than the total time allowed."
    assert len(answer.excerpt) < 10_000


def test_at_most_max_answer_bytes_are_read(receiver: FakeReceiver):
    receiver.answer_bytes = 300_000
    answer = post(OutboundPolicy.of(["127.0.0.1/32"], allow_http=True, max_answer_bytes=1000), receiver.url())
    assert answer.status == 200 and len(answer.excerpt) == 1000


def test_connection_refused_is_an_error_not_an_exception():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answer = post(LOCAL, f"http://127.0.0.1:{port}/hook")
    assert answer.status is None and answer.error.startswith("Connection failed")
