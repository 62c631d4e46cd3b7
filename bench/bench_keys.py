"""Benchmark of what an API key costs each request: verification, then the credit and quota checks.

    .venv/bin/python bench/bench_keys.py                         # SQLite file in $TMPDIR, memory + Redis
    .venv/bin/python bench/bench_keys.py -n 50000 --redis-url redis://127.0.0.1:6379/14
    .venv/bin/python bench/bench_keys.py --database-url postgres://postgres@127.0.0.1:5432/keeper_bench_keys

For each rate-limit backend (memory; Redis when one answers at --redis-url) it times N requests
built with RequestFactory and wrapped as DRF wraps them, in this process (no HTTP, no middleware):

  - baseline:  no key: the authenticator finds none, the throttles let the anonymous caller through;
  - verify:    ApiKeyAuthentication().authenticate: format and checksum, one indexed SELECT of the key
               (with owner and organization), HMAC-SHA256 and a constant-time compare;
  - credits:   CreditThrottle().allow_request: the key's own credit pool (credits_per_minute);
  - quota:     DailyQuotaThrottle().allow_request: the key's daily quota;
  - key total: verify + credits + quota, what every request with a key pays;
  - imported:  the same for an imported key in X-API-Key (scrypt once, then a per-process cache).

and prints p50, p99 and mean in microseconds. Target: key total p99 under 1 ms.
The limits are set high enough that no request is refused. Redis keys written are deleted afterwards;
the database named by --database-url is created (PostgreSQL) and migrated.
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import is_postgres, machine, now, percentile, postgres_create, setup_django, table  # noqa: E402

TARGET_P99_US = 1000.0
WARMUP = 500


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--requests", type=int, default=20_000, help="requests per measurement (20000)")
    parser.add_argument(
        "--database-url", help="database to use (default: a fresh SQLite file in a temporary directory)"
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/14",
        help="Redis for the redis backend (default redis://127.0.0.1:6379/14); skipped when it does not answer",
    )
    return parser.parse_args()


# --- setup ----------------------------------------------------------------------


def prepare(database_url: str):
    """Migrate, and issue the keys the benchmark presents: (generated, imported) IssuedKey."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.keys.choices import Scope
    from apps.keys.models import ApiKey
    from apps.keys.services import Actor, key_create

    if is_postgres(database_url):
        postgres_create(database_url)
    call_command("migrate", verbosity=0)
    owner, _ = get_user_model().objects.get_or_create(username="bench-keys")
    ApiKey.objects.filter(owner=owner).delete()
    limits = {"credits_per_minute": 1_000_000, "daily_quota": 1_000_000_000, "scope": Scope.READ}
    generated = key_create(owner=owner, name="bench-generated", actor=Actor("bench"), **limits)
    imported = key_create(
        owner=owner, name="bench-imported", actor=Actor("bench"), custom_value="bench-imported-key-0123456789", **limits
    )
    return generated, imported


def redis_answers(url: str) -> str | None:
    """None when Redis answers at `url`, else why not."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return exc.__class__.__name__
    finally:
        client.close()
    return None


def forget_redis_keys(url: str, key_ids: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key_id in key_ids:
        for name in client.scan_iter(f"keeper:*{key_id}*"):
            client.delete(name)
    client.close()


# --- measurement ----------------------------------------------------------------


class Steps:
    """Per-request timings (µs) of each step and of the whole."""

    def __init__(self) -> None:
        self.verify: list[float] = []
        self.credits: list[float] = []
        self.quota: list[float] = []
        self.total: list[float] = []


def request_with(headers: dict[str, str]):
    from django.test import RequestFactory
    from rest_framework.request import Request

    from apps.keys.authentication import ApiKeyAuthentication

    wsgi = RequestFactory().get("/regions", **headers)
    return Request(wsgi, authenticators=[ApiKeyAuthentication()])


def one_request(headers: dict[str, str], steps: Steps | None) -> None:
    from apps.keys.authentication import ApiKeyAuthentication
    from apps.keys.throttles import DailyQuotaThrottle
    from apps.throttling.throttles import CreditThrottle

    request = request_with(headers)
    clock = time.perf_counter_ns
    t0 = clock()
    found = ApiKeyAuthentication().authenticate(request)
    t1 = clock()
    request.user = found[0] if found else None
    allowed = CreditThrottle().allow_request(request, None)
    t2 = clock()
    allowed = DailyQuotaThrottle().allow_request(request, None) and allowed
    t3 = clock()
    if not allowed:
        raise SystemExit("a request was refused: the benchmark's limits are too low")
    if steps is not None:
        steps.verify.append((t1 - t0) / 1000)
        steps.credits.append((t2 - t1) / 1000)
        steps.quota.append((t3 - t2) / 1000)
        steps.total.append((t3 - t0) / 1000)


def measure(headers: dict[str, str], n: int) -> Steps:
    for _ in range(WARMUP):
        one_request(headers, None)
    steps = Steps()
    for _ in range(n):
        one_request(headers, steps)
    return steps


def summary(values: list[float]) -> list[str]:
    return [f"{percentile(values, 0.5):.1f}", f"{percentile(values, 0.99):.1f}", f"{sum(values) / len(values):.1f}"]


def run_backend(backend: str, redis_url: str | None, generated, imported, n: int) -> list[list[str]]:
    from django.test import override_settings

    from apps.throttling.services import reset_limiters

    overrides = {"RATE_LIMIT_BACKEND": backend}
    if redis_url:
        overrides["REDIS_URL"] = redis_url
    rows = []
    with override_settings(**overrides):
        reset_limiters()
        runs: list[tuple[str, Callable[[], Steps]]] = [
            ("baseline (no key)", lambda: measure({}, n)),
            ("generated key, Bearer", lambda: measure({"HTTP_AUTHORIZATION": f"Bearer {generated.value}"}, n)),
            ("imported key, X-API-Key", lambda: measure({"HTTP_X_API_KEY": imported.value}, n)),
        ]
        results = {}
        for label, run in runs:
            print(f"  {backend}: {label} x {n} ...", file=sys.stderr, flush=True)
            results[label] = run()
        reset_limiters()
    base = results["baseline (no key)"].total
    for label, steps in results.items():
        if label.startswith("baseline"):
            rows.append([backend, label, "-", "-", "-", *summary(steps.total), "-"])
            continue
        p99 = percentile(steps.total, 0.99)
        overhead = percentile(steps.total, 0.5) - percentile(base, 0.5)
        rows.append(
            [
                backend,
                label,
                f"{percentile(steps.verify, 0.5):.1f}",
                f"{percentile(steps.credits, 0.5):.1f}",
                f"{percentile(steps.quota, 0.5):.1f}",
                *summary(steps.total),
                f"+{overhead:.1f} {'ok' if p99 < TARGET_P99_US else 'OVER'}",
            ]
        )
    return rows


def redis_window_sweep(url: str, sizes: tuple[int, ...] = (10, 100, 1_000, 10_000), calls: int = 300) -> list[list]:
    """The Redis credit check against a pool already holding `size` requests of the last minute.

    A sliding log must not cost more as it fills: a script that sums the whole window on every
    call grows linearly with the requests a pool saw in the last minute (7 ms at 10,000 here,
    before the running total). One untimed call first builds the total from the prefilled log.
    """
    import redis

    from apps.throttling.limiters import RedisCreditLimiter

    client = redis.Redis.from_url(url)
    limiter = RedisCreditLimiter(client)
    rows = []
    for size in sizes:
        pool = f"bench-window-{size}"
        name = limiter.prefix + pool
        client.delete(name)
        seconds, micros = client.time()
        stamp = seconds * 1_000_000 + micros
        pipe = client.pipeline()
        for i in range(size):
            pipe.zadd(name, {f"{stamp - i}:1:{i:012d}": stamp - i})
        pipe.pexpire(name, 120_000)
        pipe.execute()
        limiter.consume(pool, 0, 10_000_000)
        timings = []
        for _ in range(calls):
            started = time.perf_counter_ns()
            limiter.consume(pool, 0, 10_000_000)
            timings.append((time.perf_counter_ns() - started) / 1000)
        client.delete(name, f"{name}:total")
        rows.append([f"{size:,}", *summary(timings)])
    client.close()
    return rows


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="keeper-bench-keys-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        setup_django(database_url)
        from django.conf import settings
        from django.db import connection

        generated, imported = prepare(database_url)
        print(f"# API key checks per request, {now()}")
        print(f"{machine()}; database {connection.vendor}; N={args.requests} per row (after {WARMUP} warm-up)\n")

        rows = run_backend("memory", None, generated, imported, args.requests)
        why_not = redis_answers(args.redis_url)
        sweep = []
        if why_not is None:
            rows += run_backend("redis", args.redis_url, generated, imported, args.requests)
            forget_redis_keys(args.redis_url, [generated.api_key.key_id, imported.api_key.key_id])
            sweep = redis_window_sweep(args.redis_url)
        else:
            print(f"redis backend skipped: no Redis at {args.redis_url} ({why_not})\n")

    print(
        table(
            [
                "backend",
                "request",
                "verify p50",
                "credits p50",
                "quota p50",
                "total p50",
                "total p99",
                "total mean",
                f"vs baseline p50, p99<{TARGET_P99_US:.0f}",
            ],
            rows,
            aligns="ll" + "r" * 7,
        )
    )
    print(
        "\nAll times in µs. total = verify + credits + quota (the throttles' own work included); "
        f"last_used_at is written at most every {settings.KEEPER_KEY_LAST_USED_INTERVAL_SECONDS} s, "
        "so not within a run."
    )
    if sweep:
        print("\nRedis credit check (one consume) against a pool holding this many requests of the last minute:\n")
        print(table(["requests in window", "p50 µs", "p99 µs", "mean µs"], sweep))
        print(
            "\nThe benchmark's single pool holds up to N requests of the last minute, so the redis rows above "
            "measure the check at that window size."
        )


if __name__ == "__main__":
    main()
