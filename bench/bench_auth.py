"""Benchmark of what "who is calling" and "how much" add to each request: token check + credit check.

    .venv/bin/python bench/bench_auth.py                          # 20,000 calls per row, Redis db 15
    .venv/bin/python bench/bench_auth.py --calls 50000 --redis-url redis://127.0.0.1:6379/14

Times, in this process (no HTTP server, no view, no middleware), each call of

    TokenIntrospectionAuthentication().authenticate(request)     # bearer token, already in the L1 cache
    CreditThrottle().allow_request(request, view)                # the caller's pool, memory or Redis

on RequestFactory requests for GET /servers (3 credits). --users tokens are spread over the
calls; each token is introspected once, before timing, at a fake identity provider on
127.0.0.1 (a real HTTP server), so every timed call is an L1 hit. Pools are big enough that
every call is admitted, so each user's window holds calls/users entries.

Rows:
  - baseline: RATE_LIMIT_ENABLED off and no token (both calls return at once);
  - token only: the L1 hit, rate limiting off;
  - token + credits (memory / redis): what the issue targets (p99 < 1 ms);
  - + global bucket: GlobalTokenBucketThrottle too, which reads the GlobalRateLimit row
    from the database on every request (SQLite file here);
  - hot caller (redis): one user whose window already holds --hot-window entries; the Lua
    script sums the whole window on every check, so its cost grows with the window.

Only 127.0.0.1 is contacted. In the Redis database of --redis-url only the keys this script
creates (keeper:credits:user:bench-*, keeper:global-bucket) are written and deleted afterwards.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PROJECT, machine, median, now, percentile, setup_django, table  # noqa: E402

TARGET_P99_US = 1000.0


def timed(calls: int, step: Callable[[int], None]) -> list[float]:
    """Microseconds of each of `calls` calls of step(i), after a short warm-up."""
    for i in range(min(calls, 500)):
        step(i)
    samples = []
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        step(i)
        samples.append((clock() - start) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per row (default 20000)")
    parser.add_argument("--users", type=int, default=1000, help="distinct tokens/users (default 1000, the L1 size)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("KEEPER_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15",
        help="Redis for the redis rows (default KEEPER_TEST_REDIS_URL, else redis://127.0.0.1:6379/15)",
    )
    parser.add_argument("--hot-window", type=int, default=1000, help="entries in the hot caller's window (1000)")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="keeper-bench-auth-")
    try:
        run(args, f"sqlite:///{directory}/keeper.sqlite3")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(args: argparse.Namespace, database_url: str) -> None:
    for name in [n for n in os.environ if n.startswith(("AUTH_", "RATE_LIMIT_")) or n == "REDIS_URL"]:
        del os.environ[name]
    setup_django(database_url)

    import redis
    from django.conf import settings
    from django.contrib.auth.models import AnonymousUser
    from django.core.management import call_command
    from django.test import RequestFactory
    from django.urls import resolve
    from rest_framework.request import Request

    from apps.accounts.authentication import TokenIntrospectionAuthentication
    from apps.throttling import services
    from apps.throttling.models import GlobalRateLimit
    from apps.throttling.throttles import CreditThrottle, GlobalTokenBucketThrottle

    sys.path.insert(0, str(PROJECT))
    from tests.fakes import FakeIdentityProvider

    call_command("migrate", verbosity=0)
    GlobalRateLimit.objects.update_or_create(pk=1, defaults={"rate_limit": 1e9, "rate_burst": 1_000_000_000})

    client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        sys.exit(f"no Redis at {args.redis_url} ({exc.__class__.__name__}); pass --redis-url")

    idp = FakeIdentityProvider()
    idp.start()
    tokens = [
        idp.issue(f"bench-token-{n:05d}", sub=f"bench-{n:05d}", api_credits_per_minute=1_000_000_000)
        for n in range(args.users)
    ]
    # Set once: a change of AUTH_* or REDIS_URL would reset the verifier and its L1 cache.
    settings.AUTH_TOKEN_INTROSPECTION_URL = idp.url
    settings.AUTH_CLIENT_ID = idp.client_id
    settings.AUTH_CLIENT_SECRET = idp.client_secret
    settings.AUTH_TOKEN_CACHE_L1_MAX_SIZE = max(1000, args.users)
    settings.AUTH_TOKEN_CACHE_L1_TTL_SECONDS = 3600
    settings.REDIS_URL = args.redis_url

    factory = RequestFactory()
    match = resolve("/servers")

    def request(token: str | None) -> Request:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        django_request = factory.get("/servers", **headers)
        django_request.resolver_match = match
        return Request(django_request)

    with_token = [request(token) for token in tokens]
    anonymous = request(None)
    authentication = TokenIntrospectionAuthentication()
    credits = CreditThrottle()
    bucket = GlobalTokenBucketThrottle()
    anonymous_user = AnonymousUser()

    for req in with_token:  # the only introspections: every timed call is an L1 hit
        req._user = authentication.authenticate(req)[0]
    assert len(idp.calls) == args.users
    idp.stop()  # from here on, a cache miss would fail loudly

    def clean_redis() -> None:
        for key in client.scan_iter("keeper:credits:user:bench-*", count=1000):
            client.delete(key)
        client.delete("keeper:global-bucket")

    def configure(*, enabled: bool, backend: str = "memory") -> None:
        settings.RATE_LIMIT_ENABLED = enabled
        settings.RATE_LIMIT_BACKEND = backend
        services.reset_limiters()
        clean_redis()

    def baseline(i: int) -> None:
        anonymous._user = authentication.authenticate(anonymous) or anonymous_user
        credits.allow_request(anonymous, None)

    def token_only(i: int) -> None:
        req = with_token[i % len(with_token)]
        req._user = authentication.authenticate(req)[0]
        credits.allow_request(req, None)

    def token_and_credits(i: int) -> None:
        req = with_token[i % len(with_token)]
        req._user = authentication.authenticate(req)[0]
        if not credits.allow_request(req, None):
            raise AssertionError("refused: the pool should admit every call")

    def token_bucket_and_credits(i: int) -> None:
        req = with_token[i % len(with_token)]
        req._user = authentication.authenticate(req)[0]
        if not (bucket.allow_request(req, None) and credits.allow_request(req, None)):
            raise AssertionError("refused")

    hot = request(tokens[0])

    def hot_caller(i: int) -> None:
        hot._user = authentication.authenticate(hot)[0]
        credits.allow_request(hot, None)

    rows: list[tuple[str, list[float]]] = []
    configure(enabled=False)
    rows.append(("baseline: no token, rate limiting off", timed(args.calls, baseline)))
    rows.append(("token (L1 hit), rate limiting off", timed(args.calls, token_only)))
    configure(enabled=True, backend="memory")
    rows.append(("token + credits, memory", timed(args.calls, token_and_credits)))
    configure(enabled=True, backend="redis")
    rows.append(("token + credits, redis", timed(args.calls, token_and_credits)))
    configure(enabled=True, backend="memory")
    rows.append(("token + global bucket + credits, memory", timed(args.calls, token_bucket_and_credits)))
    configure(enabled=True, backend="redis")
    rows.append(("token + global bucket + credits, redis", timed(args.calls, token_bucket_and_credits)))

    configure(enabled=True, backend="redis")
    for _ in range(args.hot_window):
        services.limiters().consume("user:bench-00000", 1, 1_000_000_000)
    hot_calls = max(1000, args.calls // 10)
    rows.append((f"hot caller, redis, {args.hot_window} entries in window", timed(hot_calls, hot_caller)))
    clean_redis()
    client.close()

    base = median(rows[0][1])
    print(f"# bench_auth: {now()}, {machine()}")
    print(
        f"# {args.calls} timed calls per row ({hot_calls} for the hot caller), {args.users} tokens, "
        f"Redis {args.redis_url}, GET /servers (3 credits)\n"
    )
    print(
        table(
            ["path", "calls", "p50 µs", "p99 µs", "mean µs", "added p50 µs"],
            [
                [
                    name,
                    len(samples),
                    f"{median(samples):.1f}",
                    f"{percentile(samples, 0.99):.1f}",
                    f"{sum(samples) / len(samples):.1f}",
                    f"{median(samples) - base:.1f}",
                ]
                for name, samples in rows
            ],
        )
    )
    print()
    for name, samples in rows[2:4]:
        p99 = percentile(samples, 0.99)
        verdict = "met" if p99 < TARGET_P99_US else "MISSED"
        print(f"target p99 < {TARGET_P99_US:.0f} µs for the cached path ({name}): {verdict} ({p99:.0f} µs)")


if __name__ == "__main__":
    main()
