"""Outgoing HTTP requests to destinations a caller chose (webhook receivers): never to a private address.

A caller who names a URL must not make Keeper reach what only Keeper can reach (loopback, the private
network, the cloud's metadata service at 169.254.169.254, ...). The rule is checked twice:
- when the destination is saved (`check_destination`): every address its name resolves to must be
  public, or in the operator's allowed networks;
- when a connection is opened (`GuardedSession`): the name is resolved again and the socket is opened
  to an address that passed the check, so a name that resolves to a public address when saved and to
  127.0.0.1 when used (DNS rebinding) is refused too. TLS still verifies the certificate against the name.

Redirects are never followed (a public receiver could answer 307 to http://169.254.169.254/), proxies
from the environment are ignored (a proxy would open the connection instead), each attempt is bounded in
time (connect, each read, and in all) and at most `max_answer_bytes` of the answer are read.
"""

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ReadTimeoutError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class DestinationRefused(Exception):
    """The destination is not one Keeper may send to; the message says why (safe to show the caller)."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Where requests may go and how long and how much they may take."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 15.0
    max_answer_bytes: int = 64 * 1024

    @classmethod
    def of(cls, networks: Iterable[str], **options: Any) -> "OutboundPolicy":
        return cls(allowed_networks=tuple(ipaddress.ip_network(n, strict=False) for n in networks), **options)


def address_refusal(address: IPAddress, policy: OutboundPolicy) -> str | None:
    """Why `address` may not be reached, e.g. "127.0.0.1, a loopback address" (None: it may)."""
    if any(address in network for network in policy.allowed_networks):
        return None
    # An IPv6 spelling of an IPv4 address (::ffff:127.0.0.1, 6to4, Teredo) is judged as that address.
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return address_refusal(embedded, policy)
    if address.is_multicast:
        return f"{address}, a multicast address"
    if not address.is_global:
        kind = (
            "loopback"
            if address.is_loopback
            else "link-local"
            if address.is_link_local
            else "private"
            if address.is_private
            else "reserved"
        )
        return f"{address}, a {kind} address"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal: itself); DestinationRefused when it resolves to none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"The host {host!r} does not resolve.") from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DestinationRefused(f"The host {host!r} does not resolve.")
    return addresses


def checked_addresses(host: str, port: int, policy: OutboundPolicy) -> list[IPAddress]:
    """The addresses of `host`, all of which may be reached; DestinationRefused naming the first that may not."""
    addresses = resolve(host, port)
    for address in addresses:
        refusal = address_refusal(address, policy)
        if refusal:
            raise DestinationRefused(
                f"The host {host!r} resolves to {refusal}: Keeper does not send requests to private, loopback, "
                "link-local, multicast or reserved addresses."
            )
    return addresses


def check_url(url: str, policy: OutboundPolicy) -> tuple[str, int]:
    """The host and port of `url` if its form is allowed (https, or http when allowed; no credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"Not a valid URL: {exc}.") from exc
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise DestinationRefused(
            "The URL must start with https://."
            if not policy.allow_http
            else "The URL must start with https:// or http://."
        )
    if not parts.hostname:
        raise DestinationRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("The URL must not carry a user name or password.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_destination(url: str, policy: OutboundPolicy) -> None:
    """Refuse (DestinationRefused) a URL Keeper may not send to: its form, then every address of its host."""
    host, port = check_url(url, policy)
    checked_addresses(host, port, policy)


# --- Connections opened only to checked addresses ---------------------------------------------------


class _GuardedConnectionMixin:
    policy: OutboundPolicy

    def _new_conn(self) -> socket.socket:
        try:
            addresses = checked_addresses(self._dns_host, self.port, self.policy)
        except DestinationRefused as exc:
            raise NewConnectionError(self, str(exc)) from exc
        last_error: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((str(address), self.port), self.timeout)
            except OSError as exc:
                last_error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")


def _adapter(policy: OutboundPolicy) -> HTTPAdapter:
    http_connection = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), {"policy": policy})
    https_connection = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), {"policy": policy})
    http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection})
    https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection})
    adapter = HTTPAdapter(max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
    # The pool manager picks the pool class by scheme per new pool; its key has no class, so set the map
    # before any pool exists (above) and keep it on re-initialisation (requests calls init_poolmanager once).
    return adapter


@dataclass(frozen=True)
class Answer:
    """What an attempt got: the status (None when no answer came), the time it took, the first bytes of
    the answer, and the error when it failed before an answer."""

    status: int | None
    seconds: float
    excerpt: bytes = b""
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class GuardedSession:
    """A requests session that sends only where `policy` allows, never follows redirects and reads little."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment: the connection is ours to check
        adapter = _adapter(policy)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        self._session.close()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST `body` to `url`; never raises for what the destination does (refusals, timeouts, resets)."""
        started = time.monotonic()
        try:
            check_url(url, self.policy)
            response = self._session.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                stream=True,
                timeout=(self.policy.connect_timeout, self.policy.read_timeout),
            )
        except DestinationRefused as exc:
            return Answer(None, time.monotonic() - started, error=str(exc))
        except requests.RequestException as exc:
            return Answer(None, time.monotonic() - started, error=_reason(exc))
        try:
            excerpt, error = self._read(response, started)
        finally:
            response.close()
        return Answer(response.status_code, time.monotonic() - started, excerpt, error)

    def _read(self, response: requests.Response, started: float) -> tuple[bytes, str]:
        """At most max_answer_bytes of the answer as sent (not decompressed), within the total time.

        `read1` returns what has arrived (waiting at most the read timeout), so a receiver dripping a
        byte at a time is cut at the total time; the rest of the answer is never read.
        """
        limit, deadline = self.policy.max_answer_bytes, started + self.policy.total_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            while size < limit:
                chunk = response.raw.read1(min(4096, limit - size), decode_content=False)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > deadline and size < limit:
                    return b"".join(chunks), "The answer took longer than the total time allowed."
        except (requests.RequestException, HTTPError, OSError) as exc:
            return b"".join(chunks), _reason(exc)
        return b"".join(chunks), ""


def _reason(exc: Exception) -> str:
    """A short reason for a failed attempt, without the URL (its query may carry a secret)."""
    if isinstance(exc, requests.Timeout | ReadTimeoutError | TimeoutError):
        return "Timed out."
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    if isinstance(cause, NewConnectionError):
        message = str(cause).split(": ", 1)[-1]
        return (
            message
            if message.startswith("The host")
            else f"Connection failed: {message.removeprefix('Failed to establish a new connection: ')}"
        )
    return f"{type(exc).__name__}."
