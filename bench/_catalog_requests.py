"""The catalog requests the benchmarks of issue 16 measure: bench_peer.py (against the peer) and bench_pg.py.

Each request belongs to one set (`--set NAME` in both tools picks sets). `peer` is False for a
route the Spare Cores API 0.3.6 (../shared/peer/) does not serve: those are measured on Keeper only
and listed apart. Left out on purpose: /ai/* (they call an AI provider), /debug (a diagnostic
dump), /healthcheck and /me (not the catalog; /healthcheck has its own row in bench_peer.py).
"""

from dataclasses import dataclass

SEARCH = "/servers?vcpus_min=2&memory_min=8&limit=5"
PRICES = "/server_prices?limit=25"
PRICES_FILTERED = "/server_prices?limit=25&vendor=aws&allocation=spot&vcpus_min=4"
# Issue 16, item 7: every catalog request at least this many times the peer's req/s, uncached ...
TARGET = 10
# ... the first /servers search at least 14×, and the filtered price list within 2× of the plain one.
SEARCH_TARGET = 14
FILTERED_PRICES_WITHIN = 2.0
# Issue 16, item 8: PostgreSQL within this factor of SQLite, in process, uncached.
PG_WITHIN = 2.0


@dataclass(frozen=True)
class CatalogRequest:
    path: str
    set: str
    target: float = TARGET
    peer: bool = True  # the peer serves this route too
    issue_table: bool = False  # one of the nine rows of issue 16's table


def _r(path: str, group: str, **kw) -> CatalogRequest:
    return CatalogRequest(path, group, **kw)


CATALOG_REQUESTS = [
    # issue 16's table, in its order
    _r(SEARCH, "issue", target=SEARCH_TARGET, issue_table=True),
    _r("/servers?countries=DE&limit=10", "issue", issue_table=True),
    _r(PRICES, "issue", issue_table=True),
    _r(PRICES_FILTERED, "issue", issue_table=True),
    _r("/storage_prices?storage_min=100", "issue", issue_table=True),
    _r("/regions?vendor=aws", "issue", issue_table=True),
    _r("/server/aws/m5.large/similar_servers/specs/10", "issue", issue_table=True),
    _r("/servers?gpu_min=1&limit=-1", "issue", issue_table=True),
    _r("/traffic_prices?monthly_traffic=500", "issue", issue_table=True),
    # /servers, other filter mixes (the searches of bench_api.py among them)
    _r("/servers?limit=25", "servers"),
    _r("/servers?vendor=aws&architecture=arm64&limit=25", "servers"),
    _r("/servers?order_by=score_per_price&order_dir=desc&limit=10", "servers"),
    _r("/servers?partial_name_or_id=large&limit=25&add_total_count_header=true", "servers"),
    _r("/servers?countries=DE", "servers"),
    _r("/servers?regions=us-east-1&vcpus_min=2", "servers"),
    _r("/servers?vendor=gcp&memory_min=16&order_by=min_price&order_dir=asc&limit=50", "servers"),
    _r("/servers?compliance_framework=iso27001&vcpus_min=8&limit=25", "servers"),
    # price lists
    _r("/server_prices?limit=25&vcpus_min=4&countries=DE", "prices"),
    _r("/server_prices?limit=25&vendor=gcp&order_by=price&order_dir=desc", "prices"),
    _r("/server_prices?limit=100&currency=EUR", "prices"),
    _r("/storage_prices", "prices"),
    _r("/storage_prices?vendor=aws&limit=50", "prices"),
    _r("/traffic_prices", "prices"),
    _r("/traffic_prices?vendor=aws&direction=inbound&limit=50", "prices"),
    # places and other lists
    _r("/regions", "places"),
    _r("/benchmark_configs", "places"),
    _r("/benchmark_score_stats", "places"),
    _r("/stats", "places"),
    # one server
    _r("/v2/server/aws/m5.large", "server"),
    _r("/server/aws/m5.large/prices", "server"),
    _r("/server/aws/m5.large/benchmarks", "server"),
    _r("/server/aws/m5.large/descriptions", "server"),
    _r("/server/aws/m5.large/similar_servers/family/10", "server"),
    _r("/server/aws/m5.large/similar_servers/score/10", "server"),
    # table dumps
    _r("/table/benchmark", "tables"),
    _r("/table/country", "tables"),
    _r("/table/compliance_framework", "tables"),
    _r("/table/vendor", "tables"),
    _r("/table/region", "tables"),
    _r("/table/zone", "tables"),
    _r("/table/storage", "tables"),
    _r("/table/server", "tables"),
    _r("/table/server/select?columns=vendor_id&columns=server_id&columns=vcpus&columns=memory_amount", "tables"),
    _r("/table/server/meta", "tables"),
    _r("/table/server_prices", "dumps"),  # the whole price table: seconds per answer on both sides
    # routes the peer does not serve: Keeper only
    _r("/server/aws/m5.large", "keeper-only", peer=False),
    _r("/server/aws/m5.large/price_history", "keeper-only", peer=False),
    _r("/changes", "keeper-only", peer=False),
    _r("/syncs", "keeper-only", peer=False),
    # issue 17: managed databases (the peer's 0.3.6 has none); each at >= 0.7x SEARCH's req/s, uncached
    _r("/databases?limit=25", "keeper-only", peer=False),
    _r("/databases?vendor=aws&ha=multi-zone&limit=10", "keeper-only", peer=False),
    _r("/database/aws/db.m6i.large/prices", "keeper-only", peer=False),
    _r("/database_storage_prices", "keeper-only", peer=False),
]
SETS = list(dict.fromkeys(r.set for r in CATALOG_REQUESTS))


def select(sets: list[str] | None, only: list[str] | None) -> list[CatalogRequest]:
    """The requests of `sets` (all when None), plus each path of `only` (known or not); only `only` when given alone."""
    chosen = [r for r in CATALOG_REQUESTS if (sets and r.set in sets) or (not sets and not only)]
    known = {r.path: r for r in CATALOG_REQUESTS}
    for path in only or []:
        if path not in [r.path for r in chosen]:
            chosen.append(known.get(path, CatalogRequest(path, "extra")))
    return chosen
