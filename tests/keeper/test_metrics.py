"""Prometheus metrics at /metrics: who may read them, what they count, and totals across gunicorn workers.

In process (one process, prometheus_client's default registry) the counters are read before and
after, so earlier tests do not matter. The last part starts gunicorn with keeper/gunicorn.conf.py
and two workers, and checks that every scrape, whichever worker answers, sums both workers' files;
the same run checks the logs there: JSON only, and exactly one line per request.
"""

import glob
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import OperationalError
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from apps.accounts.verification import reset_verifier
from apps.catalog.models import SyncRun
from apps.catalog.services import catalog_sync
from apps.catalog.sources import CatalogSourceError
from apps.keys.choices import Scope
from apps.keys.policy import Actor
from apps.keys.services import key_create
from apps.throttling.models import GlobalRateLimit
from apps.throttling.services import global_limit_update
from tests.catalog.upstream import sample_catalog
from tests.fakes import bearer, run_django
from tests.live import LiveKeeper, bootstrap_keys

PROJECT = Path(__file__).resolve().parent.parent.parent
OUTSIDE = "203.0.113.9"  # not in the default KEEPER_METRICS_ALLOWED_NETWORKS
# Every label Keeper uses; each takes a few fixed words (kind: what a dropped deferred write was).
LABELS = {"route", "method", "status", "reason", "level", "outcome", "kind", "le"}
Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(api, **extra) -> Samples:
    response = api.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Counted:
    """The change of one sample between the start of the block and a later reading."""

    def __init__(self, api, name: str, **labels: str):
        self.api, self.name, self.labels = api, name, labels
        self.before = value(scrape(api), name, **labels)

    @property
    def delta(self) -> float:
        return value(scrape(self.api), self.name, **self.labels) - self.before


@pytest.fixture
def limits(db, settings, fresh_state, no_redis):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    settings.RATE_LIMIT_DEFAULT_CREDIT_COST = 1
    settings.RATE_LIMIT_UNAUTHORIZED_PENALTY = 10
    settings.RATE_LIMIT_TRUSTED_PROXIES = []
    GlobalRateLimit.objects.update_or_create(
        pk=GlobalRateLimit.SINGLETON_ID, defaults={"rate_limit": 1000.0, "rate_burst": 1_000_000}
    )
    return settings


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="alice")


def issue(owner, scope: str = Scope.READ, **fields) -> str:
    return key_create(owner=owner, name=secrets.token_hex(4), actor=Actor("test-setup"), scope=scope, **fields).value


# --- Who may read them ------------------------------------------------------------


def test_the_local_network_reads_them_without_credentials(api, db):
    response = api.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "private, no-store"
    assert "# TYPE keeper_http_requests_total counter" in response.content.decode()


def test_a_scraper_asking_for_openmetrics_gets_it(api, db):
    response = api.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0, text/plain;q=0.5")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")


def test_anonymous_callers_elsewhere_get_a_json_401(api, db):
    response = api.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_ACCEPT="text/plain")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_callers_without_admin_get_a_json_403(api, owner, introspection, fresh_state):
    write_key = issue(owner, Scope.WRITE)
    token = introspection.issue("tok-user", sub="bob", groups=["users"])

    by_key = api.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_API_KEY=write_key)
    by_token = api.get("/metrics", REMOTE_ADDR=OUTSIDE, **bearer(token))

    assert [by_key.status_code, by_token.status_code] == [403, 403]
    assert by_key.json()["code"] == "permission_denied"
    assert "admin" in by_key.json()["detail"]


def test_admin_keys_and_staff_tokens_read_them_from_anywhere(api, owner, introspection, fresh_state):
    admin_key = issue(owner, Scope.ADMIN)
    staff = introspection.issue("tok-staff", sub="root", groups=["keeper-staff"])

    assert api.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_API_KEY=admin_key).status_code == 200
    assert api.get("/metrics", REMOTE_ADDR=OUTSIDE, **bearer(staff)).status_code == 200


def test_the_allowed_networks_are_a_setting(api, db, settings):
    settings.KEEPER_METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24", "2001:db8::/32"]

    assert api.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert api.get("/metrics").status_code == 401  # 127.0.0.1 is no longer listed


def test_the_client_network_is_judged_as_the_limits_judge_the_client_ip(api, db, settings):
    settings.KEEPER_METRICS_ALLOWED_NETWORKS = ["198.51.100.0/24"]
    settings.RATE_LIMIT_TRUSTED_PROXIES = ["10.0.0.0/8"]

    via_trusted_proxy = api.get("/metrics", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    forged = api.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert (via_trusted_proxy.status_code, forged.status_code) == (200, 401)


def test_none_allows_no_network_and_empty_is_the_default(api, db, settings):
    code = "from django.conf import settings; print(settings.KEEPER_METRICS_ALLOWED_NETWORKS)"

    assert run_django(code, {"KEEPER_METRICS_ALLOWED_NETWORKS": "none"}).stdout.strip() == "[]"
    assert run_django(code, {"KEEPER_METRICS_ALLOWED_NETWORKS": ""}).stdout.strip() == "['127.0.0.1/32', '::1/128']"
    settings.KEEPER_METRICS_ALLOWED_NETWORKS = []
    assert api.get("/metrics").status_code == 401


def test_a_malformed_network_stops_start_up_naming_the_variable():
    result = run_django("", {"KEEPER_METRICS_ALLOWED_NETWORKS": "127.0.0.1/32,10.0.0.1/8"})

    assert result.returncode != 0
    assert "KEEPER_METRICS_ALLOWED_NETWORKS: '10.0.0.1/8' is not a CIDR range" in result.stderr


def test_scrapes_cost_no_credits_and_pass_a_drained_global_bucket(api, limits):
    global_limit_update(rate_limit=0.001, rate_burst=1)
    api.get("/me")
    assert api.get("/me").status_code == 429  # the bucket is empty

    scrapes = [api.get("/metrics") for _ in range(5)]

    assert [r.status_code for r in scrapes] == [200] * 5
    assert {r["X-RateLimit-Cost"] for r in scrapes} == {"0"}
    assert len({r["X-RateLimit-Remaining"] for r in scrapes}) == 1


def test_metrics_are_not_an_operation_of_the_api_schema(api, db):
    paths = api.get("/openapi.json").json()["paths"]

    assert "/metrics" not in paths
    assert "/server/{vendor}/{server}" in paths  # the route names the request metrics use


# --- What they count --------------------------------------------------------------


def test_requests_are_counted_by_route_pattern_and_status(api, loaded_catalog):
    found = Counted(api, "keeper_http_requests_total", route="/server/{vendor}/{server}", method="GET", status="200")
    missing = Counted(api, "keeper_http_requests_total", route="/server/{vendor}/{server}", method="GET", status="404")
    timed = Counted(api, "keeper_http_request_duration_seconds_count", route="/server/{vendor}/{server}")

    api.get("/server/aws/t3.micro")
    api.get("/server/aws/t3.micro")
    assert api.get("/server/aws/no-such-server").status_code == 404

    assert (found.delta, missing.delta, timed.delta) == (2, 1, 3)


def test_unknown_urls_and_methods_are_counted_without_their_raw_values(api, db):
    unmatched = Counted(api, "keeper_http_requests_total", route="unmatched", method="other", status="404")

    api.generic("BREW", "/no/such/thing-1234")

    assert unmatched.delta == 1
    assert not any("thing-1234" in str(labels) or "BREW" in str(labels) for _, labels in scrape(api))


def test_refusals_are_counted_by_reason(api, limits, owner, loaded_catalog):
    pool = Counted(api, "keeper_throttle_refusals_total", reason="pool")
    bucket = Counted(api, "keeper_throttle_refusals_total", reason="global_bucket")
    quota = Counted(api, "keeper_throttle_refusals_total", reason="quota")
    penalties = Counted(api, "keeper_unauthorized_penalties_total")

    limits.RATE_LIMIT_CREDITS_PER_MINUTE = 4
    assert [api.get("/servers").status_code for _ in range(2)] == [200, 429]  # 3 credits each
    limits.RATE_LIMIT_CREDITS_PER_MINUTE = 60
    quota_key = issue(owner, daily_quota=1)
    assert [api.get("/regions", HTTP_X_API_KEY=quota_key).status_code for _ in range(2)] == [200, 429]
    assert api.get("/me", REMOTE_ADDR="192.0.2.10").status_code == 401
    global_limit_update(rate_limit=0.001, rate_burst=1)
    assert [api.get("/regions", REMOTE_ADDR="192.0.2.11").status_code for _ in range(2)] == [200, 429]

    assert (pool.delta, quota.delta, bucket.delta, penalties.delta) == (1, 1, 1, 1)


def test_unknown_urls_refused_by_the_limits_are_pool_refusals(api, limits):
    pool = Counted(api, "keeper_throttle_refusals_total", reason="pool")
    limits.RATE_LIMIT_CREDITS_PER_MINUTE = 1

    assert [api.get("/nothing").status_code for _ in range(2)] == [404, 429]

    assert pool.delta == 1


def test_token_verdicts_are_counted_by_cache_level_and_provider_calls_by_outcome(api, db, introspection, fresh_state):
    l1 = Counted(api, "keeper_token_cache_lookups_total", level="l1")
    miss = Counted(api, "keeper_token_cache_lookups_total", level="miss")
    ok = Counted(api, "keeper_identity_provider_calls_total", outcome="ok")
    failed = Counted(api, "keeper_identity_provider_calls_total", outcome="failure")
    timed = Counted(api, "keeper_identity_provider_call_duration_seconds_count")
    token = introspection.issue("tok-alice")

    assert [api.get("/me", **bearer(token)).status_code for _ in range(3)] == [200] * 3
    introspection.status = 500
    assert api.get("/me", **bearer("tok-unknown")).status_code == 503

    assert (miss.delta, l1.delta) == (2, 2)
    assert (ok.delta, failed.delta, timed.delta) == (1, 1, 2)


def test_a_verdict_found_in_redis_is_an_l2_hit(api, db, introspection, redis_cache, fresh_state):
    l2 = Counted(api, "keeper_token_cache_lookups_total", level="l2")
    token = introspection.issue("tok-shared")
    api.get("/me", **bearer(token))
    reset_verifier()  # another process: an empty L1, the same Redis

    assert api.get("/me", **bearer(token)).status_code == 200

    assert l2.delta == 1
    assert introspection.introspected == [token]


def test_key_verifications_are_counted_by_outcome(api, owner):
    valid = Counted(api, "keeper_api_key_verifications_total", outcome="valid")
    invalid = Counted(api, "keeper_api_key_verifications_total", outcome="invalid")
    forbidden = Counted(api, "keeper_api_key_verifications_total", outcome="forbidden")
    good = issue(owner)
    fenced = issue(owner, allowed_ips=["10.0.0.0/8"])

    statuses = [
        api.get("/me", HTTP_X_API_KEY=good).status_code,
        api.get("/me", HTTP_X_API_KEY=good[:-1] + ("A" if good[-1] != "A" else "B")).status_code,
        api.get("/me", HTTP_X_API_KEY="an-imported-key-nobody-has").status_code,
        api.get("/me", HTTP_X_API_KEY=fenced).status_code,
    ]

    assert statuses == [200, 401, 401, 403]
    assert (valid.delta, invalid.delta, forbidden.delta) == (1, 2, 1)


def test_sync_runs_are_counted_by_status_with_their_duration(api, db, tmp_path):
    succeeded = Counted(api, "keeper_catalog_sync_runs_total", status="SUCCEEDED")
    skipped = Counted(api, "keeper_catalog_sync_runs_total", status="SKIPPED")
    failed = Counted(api, "keeper_catalog_sync_runs_total", status="FAILED")
    timed = Counted(api, "keeper_catalog_sync_duration_seconds_count", status="SUCCEEDED")
    source = str(sample_catalog().save(tmp_path / "catalog.db"))

    catalog_sync(source=source)
    catalog_sync(source=source)
    with pytest.raises(CatalogSourceError):
        catalog_sync(source=str(tmp_path / "missing.db"))

    assert (succeeded.delta, skipped.delta, failed.delta, timed.delta) == (1, 1, 1, 1)


def test_the_catalog_age_is_absent_before_a_catalog_and_counts_from_the_last_load(api, db, tmp_path):
    assert not any(name == "keeper_catalog_age_seconds" for name, _ in scrape(api))

    run = catalog_sync(source=str(sample_catalog().save(tmp_path / "catalog.db")))
    with time_machine.travel(run.finished_at + timedelta(seconds=300), tick=False):
        age = value(scrape(api), "keeper_catalog_age_seconds")

    assert age == pytest.approx(300, abs=0.01)


def test_a_database_that_does_not_answer_leaves_out_only_the_catalog_age(api, loaded_catalog, monkeypatch):
    assert "keeper_catalog_age_seconds" in {name for name, _ in scrape(api)}

    def unreachable(self):
        raise OperationalError("connection refused")

    monkeypatch.setattr(type(SyncRun.objects), "last_loaded", unreachable)
    names = {name for name, _ in scrape(api)}

    assert "keeper_catalog_age_seconds" not in names
    assert "keeper_http_requests_total" in names


def test_no_metric_is_labelled_by_key_user_or_ip(api, owner, introspection, fresh_state, loaded_catalog):
    key = issue(owner)
    token = introspection.issue("tok-carol", sub="carol")
    api.get("/servers", HTTP_X_API_KEY=key, REMOTE_ADDR="192.0.2.77")
    api.get("/me", REMOTE_ADDR="192.0.2.78", **bearer(token))

    samples = [(name, dict(labels)) for name, labels in scrape(api) if name.startswith("keeper_")]

    assert samples
    assert {label for _, labels in samples for label in labels} <= LABELS
    values = " ".join(str(labels) for _, labels in samples)
    assert not any(secret in values for secret in (key, key[:19], "carol", "alice", "192.0.2.77", "192.0.2.78"))


def test_gunicorn_config_makes_a_private_metrics_folder_and_removes_it_at_exit():
    code = (
        "import os, runpy, sys\n"
        "config = runpy.run_path('keeper/gunicorn.conf.py')\n"
        "folder = os.environ['PROMETHEUS_MULTIPROC_DIR']\n"
        "print(folder, os.path.isdir(folder), oct(os.stat(folder).st_mode & 0o777))\n"
        "config['on_exit'](None)\n"
        "print(os.path.exists(folder))\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}

    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT, capture_output=True, text=True)

    made, removed = result.stdout.splitlines()
    folder, exists, mode = made.split()
    assert "keeper-metrics-" in folder
    assert (exists, mode, removed) == ("True", "0o700", "False")


# --- Several gunicorn workers -----------------------------------------------------


def _stale_counter(folder: Path) -> None:
    """A file an earlier server left: 1000 /healthcheck requests of a process long gone."""
    stale = MmapedDict(str(folder / "counter_999999.db"))
    labels = {"route": "/healthcheck", "method": "GET", "status": "200"}
    key = mmap_key("keeper_http_requests", "keeper_http_requests_total", list(labels), list(labels.values()), "")
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKeeper]:
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("the gunicorn test uses a SQLite database of its own; the SQLite run covers it")
    tmp = tmp_path_factory.mktemp("metrics")
    metrics_dir = tmp / "prometheus"
    metrics_dir.mkdir()
    _stale_counter(metrics_dir)
    with LiveKeeper(
        tmp,
        KEEPER_API_KEYS=bootstrap_keys(),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        # KEEPER_LOG_FORMAT unset: the output is a file, so the default must be json.
        # Ready once /metrics answers: no /healthcheck is counted before the tests' own.
        ready_path="/metrics",
    ) as server:
        yield server


def _metrics_dir(server: LiveKeeper) -> Path:
    return Path(server.env["PROMETHEUS_MULTIPROC_DIR"])


def _log_lines(server: LiveKeeper) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if line.strip()]


def _live_samples(server: LiveKeeper) -> Samples:
    response = server.get("/metrics")
    assert response.status == 200
    return parse(response.body.decode())


def _per_process_totals(folder: Path, name: str, **labels: str) -> dict[str, float]:
    """The sample in each process's own file, by pid (what a scrape must add up)."""
    totals = {}
    for path in glob.glob(str(folder / "counter_*.db")):
        samples = parse_families(MultiProcessCollector.merge([path]))
        totals[Path(path).stem.split("_")[-1]] = value(samples, name, **labels)
    return totals


def parse_families(families) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def test_every_scrape_adds_up_the_counters_of_all_workers(gunicorn_server):
    healthy = {"route": "/healthcheck", "method": "GET", "status": "200"}
    before = value(_live_samples(gunicorn_server), "keeper_http_requests_total", **healthy)
    statuses: list[int] = []
    # Concurrent requests on new connections, until both workers have served some (the kernel decides).
    for _ in range(10):
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses += pool.map(lambda _: gunicorn_server.get("/healthcheck").status, range(30))
        per_process = _per_process_totals(_metrics_dir(gunicorn_server), "keeper_http_requests_total", **healthy)
        if sum(1 for count in per_process.values() if count > 0) >= 2:
            break

    scrapes = [value(_live_samples(gunicorn_server), "keeper_http_requests_total", **healthy) for _ in range(6)]

    assert statuses == [200] * len(statuses)
    # The stale file of an earlier server was cleared at start: only this server's requests count.
    assert before == 0
    assert "999999" not in per_process
    assert sum(1 for count in per_process.values() if count > 0) >= 2, per_process
    assert sum(per_process.values()) == len(statuses)
    # Whichever worker answers the scrape, it reports the sum of both.
    assert scrapes == [len(statuses)] * 6


def test_histograms_add_up_across_workers_too(gunicorn_server):
    count = "keeper_http_request_duration_seconds_count"
    before = value(_live_samples(gunicorn_server), count, route="/stats")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: gunicorn_server.get("/stats"), range(20)))

    samples = _live_samples(gunicorn_server)
    assert value(samples, count, route="/stats") - before == 20
    assert value(samples, "keeper_http_request_duration_seconds_bucket", route="/stats", le="+Inf") - before == 20


def test_live_logs_are_json_with_exactly_one_line_per_request(gunicorn_server):
    marker = secrets.token_hex(8)
    responses = [gunicorn_server.get("/healthcheck", {"X-Request-ID": f"{marker}-{n}"}) for n in range(5)]
    refused = gunicorn_server.raw(
        b"POST /keys/validate HTTP/1.1\r\nHost: keeper\r\nX-Request-ID: " + marker.encode() + b"-big\r\n"
        b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    )
    expected = sorted([f"{marker}-{n}" for n in range(5)] + [f"{marker}-big"])
    deadline = time.monotonic() + 10
    while True:  # gunicorn logs the 413 just after sending it
        lines = [json.loads(line) for line in _log_lines(gunicorn_server)]  # every line is JSON
        mine = [line for line in lines if str(line.get("request_id", "")).startswith(marker)]
        if len(mine) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert [r.headers["x-request-id"] for r in responses] == [f"{marker}-{n}" for n in range(5)]
    assert sorted(line["request_id"] for line in mine) == expected
    assert all(line["logger"] == "keeper.requests" for line in mine)
    # The 413 never reached Django: its one line comes from gunicorn's logger, in the same shape.
    [big] = [line for line in mine if line["request_id"] == f"{marker}-big"]
    assert refused.startswith(b"HTTP/1.1 413")
    assert (big["status"], big["path"], big["client_ip"]) == (413, "/keys/validate", "127.0.0.1")
    # gunicorn's own messages are JSON lines too.
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
