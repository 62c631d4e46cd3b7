"""Benchmark of capability tokens: issuing one, verifying one offline, and Keeper accepting one per request.

    .venv/bin/python bench/bench_tokens.py              # SQLite file in $TMPDIR
    .venv/bin/python bench/bench_tokens.py -n 20000

In this process (no HTTP, no middleware), N times each, after a warm-up:

  - issue:             apps.keys.capability.token_issue: the claims, an ES256 signature (PyJWT + OpenSSL);
  - verify offline:    jwt.decode with the published key: what a backend does per request (signature,
                       exp, iat, aud, iss);
  - ES256 / Ed25519 signature only: the bare OpenSSL check of each algorithm, for the choice of ES256;
  - Keeper, first use: token_authenticate on a token this process has not seen: signature and claims,
                       the key's row with its deny-list entry (one query);
  - Keeper, verify:    token_verify on a token seen before: SHA-256 of the token, the verified-token
                       cache, its expiry. Target (as "verify offline"): p99 under 100 µs;
  - Keeper, per request: token_authenticate on a token seen before (what a gateway forwarding one token
                       costs each request): SHA-256 of the token, the verified-token cache, the key's row
                       with its deny-list entry (one query), the key's restrictions;
  - Keeper, DRF:       CapabilityTokenAuthentication().authenticate, the above plus recognising the token
                       and building the caller; beside ApiKeyAuthentication for the same key.

Prints p50, p99 and mean in µs, the load average and the cores other processes used meanwhile
(the machine is shared: figures taken while `others` is high are not comparable).
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CpuMeter, load_average, machine, now, percentile, setup_django, table, wait_for_quiet  # noqa: E402

TARGET_VERIFY_P99_US = 100.0
WARMUP = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--requests", type=int, default=5_000, help="calls per measurement (5000)")
    parser.add_argument("--wait-quiet", type=float, default=30.0, help="seconds to wait for an idle machine (30)")
    return parser.parse_args()


def timed(call: Callable[[], object], n: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    clock = time.perf_counter_ns
    timings = []
    for _ in range(n):
        started = clock()
        call()
        timings.append((clock() - started) / 1000)
    return timings


def prepare():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.keys.services import Actor, key_create

    call_command("migrate", verbosity=0)
    owner, _ = get_user_model().objects.get_or_create(username="bench-tokens")
    return key_create(
        owner=owner,
        name="bench-tokens",
        actor=Actor("bench"),
        allowed_endpoints=["/regions", "/server/*"],
        credits_per_minute=1_000_000,
    )


def rows_for(issued, n: int) -> list[list[str]]:
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from django.conf import settings
    from django.test import RequestFactory
    from rest_framework.request import Request

    from apps.catalog.views.catalog import RegionListView
    from apps.keys.authentication import ApiKeyAuthentication, CapabilityTokenAuthentication
    from apps.keys.capability import (
        KeyLimits,
        issue_time,
        token_authenticate,
        token_issue,
        token_verify,
        verified_tokens,
    )
    from apps.keys.signing import ALGORITHM, key_set

    key = issued.api_key
    limits = KeyLimits(1_000_000, 999_999)
    token = token_issue(key, issued_at=issue_time(), ttl_seconds=3600, limits=limits).token
    public = key_set.published()[0].key
    audience, issuer = settings.KEEPER_TOKEN_AUDIENCE, settings.KEEPER_TOKEN_ISSUER
    message = token.rsplit(".", 1)[0].encode()
    es_private, ed_private = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    es_signature, ed_signature = es_private.sign(message, ec.ECDSA(hashes.SHA256())), ed_private.sign(message)
    es_public, ed_public = es_private.public_key(), ed_private.public_key()
    factory = RequestFactory()

    def first_use() -> None:
        verified_tokens.clear()
        token_authenticate(token, ip="127.0.0.1", path="/regions")

    def drf(authenticator, header: str) -> Callable[[], object]:
        def call() -> object:
            wsgi = factory.get("/regions", HTTP_AUTHORIZATION=header)
            request = Request(wsgi, authenticators=[authenticator], parser_context={"view": RegionListView()})
            return authenticator.authenticate(request)

        return call

    def issue() -> object:
        return token_issue(key, issued_at=issue_time(), ttl_seconds=300, limits=limits)

    def verify_offline() -> object:
        return jwt.decode(token, public, algorithms=[ALGORITHM], audience=audience, issuer=issuer)

    def es256_only() -> None:
        es_public.verify(es_signature, message, ec.ECDSA(hashes.SHA256()))

    def ed25519_only() -> None:
        ed_public.verify(ed_signature, message)

    def per_request() -> object:
        return token_authenticate(token, ip="127.0.0.1", path="/regions")

    def verify_seen() -> object:
        return token_verify(token)

    runs: list[tuple[str, Callable[[], object], bool]] = [
        ("issue (claims + ES256 signature)", issue, False),
        ("verify offline (jwt.decode: signature, exp, aud, iss)", verify_offline, True),
        ("  ES256 signature only (OpenSSL)", es256_only, False),
        ("  Ed25519 signature only (OpenSSL)", ed25519_only, False),
        ("Keeper, first use of a token", first_use, False),
        ("Keeper, verify a token seen before (token_verify)", verify_seen, True),
        ("Keeper, per request (key and deny list: one query)", per_request, False),
        ("Keeper, DRF authentication of the token", drf(CapabilityTokenAuthentication(), f"Bearer {token}"), False),
        ("  beside: DRF authentication of the key", drf(ApiKeyAuthentication(), f"Bearer {issued.value}"), False),
    ]
    rows = []
    for label, call, target in runs:
        print(f"  {label.strip()} x {n} ...", file=sys.stderr, flush=True)
        rows.append(row(label, timed(call, n), target))
    return rows


def row(label: str, timings: list[float], target: bool) -> list[str]:
    p99 = percentile(timings, 0.99)
    verdict = ("ok" if p99 < TARGET_VERIFY_P99_US else "OVER") if target else ""
    return [
        label,
        f"{percentile(timings, 0.5):.1f}",
        f"{p99:.1f}",
        f"{sum(timings) / len(timings):.1f}",
        verdict,
    ]


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="keeper-bench-tokens-") as tmp:
        setup_django(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        issued = prepare()
        print(f"# Capability tokens, {now()}")
        print(f"{machine()}; N={args.requests} per row (after {WARMUP} warm-up)")
        quiet = wait_for_quiet(args.wait_quiet)
        meter = CpuMeter()
        rows = rows_for(issued, args.requests)
        others = meter.others()
        print(f"load average {load_average()}; others: {others:.2f} cores (before: {quiet:.2f})\n")
        print(
            table(
                ["step", "p50 µs", "p99 µs", "mean µs", f"p99 < {TARGET_VERIFY_P99_US:.0f} µs"],
                rows,
                aligns="lrrrl",
            )
        )
        print(
            "\nThe per-request rows are what Keeper pays for each request a gateway forwards with one token: "
            "its signature is checked once per process; its expiry, its key and deny-list entry (one query) and "
            "the key's restrictions every time."
        )


if __name__ == "__main__":
    main()
