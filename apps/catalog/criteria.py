"""What a catalog search asks for, as plain values: what a FilterSet hands a selector once it validated a query.

The FilterSet declares each parameter with its part in the search (apps/catalog/filters/terms.py) and,
after validation, builds one `ServerSearch`; the selector (apps/catalog/selectors/servers.py) turns it
into SQL. Neither imports the other: both import this module, which knows no SQL.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.catalog import choices
from apps.catalog.places import Places

# What a condition is on (`Condition.on`): a column of the server row, a text search over server
# columns, or a figure the search derives (from the cheapest price in the asked places, the selected
# benchmark's best score, the vendor's compliance frameworks).
COLUMN = "column"
TEXT = "text"
SCORE_PER_PRICE = "score_per_price"
BENCHMARK_SCORE = "benchmark_score"
BENCHMARK_SCORE_PER_PRICE = "benchmark_score_per_price"
VENDOR_FRAMEWORK = "vendor_framework"
# A JSON list column of the row holding every one of the values (`lookup` "contains"): a database's
# HA levels, security features, engine versions.
JSON_LIST = "json_list"
# Two columns of the row compared with each other (no values): vcpus > cpu_cores (hyperthreading).
COMPARED = "compared"
# One column of the row per another (`columns`: numerator, denominator): memory per vCPU.
RATIO = "ratio"
# The number of items of a JSON list column of the row: the built-in storages.
LIST_LENGTH = "list_length"
# The selected benchmark's best score per vCPU.
BENCHMARK_SCORE_PER_VCPU = "benchmark_score_per_vcpu"
# The best price the search reports (its allocation, places and monthly extras), the values in its currency.
BEST_PRICE = "best_price"
# How it compares (django-filter's lookup names; "in" for a list, "contains" for text, or every value
# in a JSON list).
LOOKUPS = ("exact", "gte", "lte", "gt", "lt", "in", "contains")

# Orderings by a price: they hide the servers without one, as the Spare Cores API does.
PRICE_ORDERINGS = ("min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly", "price")
BENCHMARK_ORDERINGS = ("selected_benchmark_score", "selected_benchmark_score_per_price")
# Orderings on figures derived from the prices and scores (any other ordering is a server column).
DERIVED_ORDERINGS = (*PRICE_ORDERINGS[:-1], "score", "score1", "score_per_price")


def status_filter(only_active: bool | None, only_orderable: bool, orderable: tuple[str, ...]) -> tuple[str, ...] | None:
    """The statuses a search lists (None: any), as the newest Spare Cores API's `status_filter` picks them:
    `only_active` wins, else `only_orderable` lists the `orderable` statuses."""
    if only_active:
        return (choices.DatabaseStatus.ACTIVE,)
    if only_orderable:
        return orderable
    return None


@dataclass(frozen=True)
class Condition:
    """One condition of a search: `on` (COLUMN, TEXT, ...) of `columns`, compared by `lookup` with `values`."""

    on: str
    lookup: str
    values: tuple[Any, ...]
    columns: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[str, str, tuple[str, ...], int]:
        """What the SQL text of the condition depends on (its values are bound)."""
        return self.on, self.lookup, self.columns, len(self.values)


@dataclass(frozen=True)
class ServerSearch:
    """A validated `/servers` query (or one server by reference): every parameter's part, as values.

    `monthly_*` and `extra_storage_*` add the cheapest traffic and storage to every price;
    `allocation` is `best_price_allocation`; prices are in `currency` (computed in USD);
    `only_active` (None: not given) and `only_orderable` pick the statuses (`statuses`).
    """

    conditions: tuple[Condition, ...] = ()
    places: Places = Places()
    benchmark_id: str | None = None
    benchmark_config: str | None = None
    monthly_inbound_traffic: float | None = None
    monthly_outbound_traffic: float | None = None
    extra_storage_size: float | None = None
    extra_storage_type: tuple[str, ...] = ()
    allocation: str = choices.BestPriceAllocation.ANY
    order_by: str = "min_price"
    order_dir: str = "asc"
    only_active: bool | None = None
    only_orderable: bool = True
    currency: str = "USD"
    limit: int = 25
    page: int = 1
    count: bool = False
    reference: tuple[str, str] | None = None  # (vendor_id, server id or API reference)

    @property
    def statuses(self) -> tuple[str, ...] | None:
        """The servers' statuses listed (None: any)."""
        return status_filter(self.only_active, self.only_orderable, choices.ORDERABLE_SERVER_STATUSES)


# `/databases` orders by these figures of a database as well as by its columns. The prices (and
# selected_benchmark_score_per_price) leave out the databases without one; score, score1 and
# score_per_price are upstream's DatabaseExtra columns, which no database has (always null).
DATABASE_PRICE_ORDERINGS = ("min_price", "min_price_ondemand", "min_price_ondemand_monthly")
DATABASE_DERIVED_ORDERINGS = (*DATABASE_PRICE_ORDERINGS, "score", "score1", "score_per_price")


@dataclass(frozen=True)
class DatabaseSearch:
    """A validated `/databases` query: every parameter's part, as values.

    Conditions may be on the database's columns (COLUMN, TEXT, JSON_LIST), on its underlying server's
    (`price_criteria.SERVER`: only databases on a known server then match) or on the selected
    benchmark's score. `only_active` (None: not given) and `only_orderable` pick the statuses;
    `extra_storage_size` (GB, 0: none) adds the vendor's cheapest data storage to every price;
    `allocation` is `best_price_allocation`; prices are in `currency` (computed in USD).
    """

    conditions: tuple[Condition, ...] = ()
    places: Places = Places()
    benchmark_id: str | None = None
    benchmark_config: str | None = None
    extra_storage_size: int = 0
    allocation: str = choices.BestDatabasePriceAllocation.ANY
    order_by: str = "min_price"
    order_dir: str = "asc"
    only_active: bool | None = None
    only_orderable: bool = True
    currency: str = "USD"
    limit: int = 25
    page: int = 1
    count: bool = False

    @property
    def statuses(self) -> tuple[str, ...] | None:
        """The statuses listed (None: any)."""
        return status_filter(self.only_active, self.only_orderable, choices.ORDERABLE_DATABASE_STATUSES)


@dataclass(frozen=True)
class PriceHistoryQuery:
    """What `/server/{vendor}/{server}/price_history` (or a database's) asks for: the places, the allocation,
    the window and the currency (apps/catalog/filters/history.py builds it, apps/catalog/selectors/history.py
    reads it)."""

    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    allocation: str | None = None
    since: datetime | None = None
    currency: str = "USD"


@dataclass(frozen=True)
class DatabasePriceQuery:
    """What `/database/{vendor}/{database}/prices` asks for: the places, the currency, and (with
    `price_change_since`) only the prices changed since then, with their previous price
    (apps/catalog/filters/database_details.py builds it, apps/catalog/selectors/database_details.py reads it)."""

    places: Places = Places()
    currency: str = "USD"
    price_change_since: datetime | None = None
