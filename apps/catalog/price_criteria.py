"""What a price search asks for, as plain values: what a price FilterSet (apps/catalog/filters/prices.py)
hands the price selector (apps/catalog/selectors/prices.py) once it validated a query.

Conditions are apps.catalog.criteria's `Condition`s. Besides criteria.COLUMN (a column of the price row),
criteria.TEXT (the server's text columns) and criteria.VENDOR_FRAMEWORK, a price condition is on one of
the names below. `order_by` values are declared here too, with what each sorts by, for both.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Model

from apps.catalog.criteria import COLUMN, Condition
from apps.catalog.importer import upstream_columns
from apps.catalog.models import (
    DatabaseStorage,
    DatabaseStoragePrice,
    Region,
    Server,
    ServerPrice,
    Storage,
    StoragePrice,
    TrafficPrice,
)
from apps.catalog.places import Places

SERVER = "server"  # a column of the price's server
STORAGE = "storage"  # a column of the price's storage (block storage, or a managed database's storage)
REGION = "region"  # a column of the price's region
PRICE_IN_CURRENCY = "price_in_currency"  # the price converted to the search's currency
SCORE_PER_USD = "score_per_usd"  # the server's stress-ng score per USD/hour of this price
SIZE_WITHIN = "size_within"  # a size within the storage's [min_size, max_size]


@dataclass(frozen=True)
class PriceSearch:
    """A validated `/server_prices`, `/storage_prices`, `/traffic_prices` or `/database_storage_prices` query.

    Prices are sorted by `order_by` (a column of the price, of a related row, or a derived figure) and
    answered in `currency`; `price_change_since` keeps the prices changed since then and adds
    `previous_price`; `monthly_traffic` is the usage `/traffic_prices` prices. `limit` -1 means all rows.
    """

    conditions: tuple[Condition, ...] = ()
    places: Places = Places()
    order_by: str = "price"
    order_dir: str = "asc"
    currency: str = "USD"
    only_active: bool = True
    price_change_since: datetime | None = None
    monthly_traffic: float = 1.0
    limit: int = 25
    page: int = 1
    count: bool = False

    @property
    def descending(self) -> bool:
        return self.order_dir == "desc"


@dataclass(frozen=True)
class PriceTableQuery:
    """A validated `/table/server_prices` or `/table/database_price` query: prices in their own currency unless
    `currency` is given."""

    conditions: tuple[Condition, ...] = ()
    places: Places = Places()
    only_active: bool = True
    currency: str | None = None


# --- orderings: what `order_by` may name, and what it sorts by --------------------------------------

Order = tuple[str, str]  # (what it is on: COLUMN, SERVER, REGION, STORAGE or SCORE_PER_USD; the column)


def order_columns(*models_and_relations: tuple[type[Model], str]) -> dict[str, Order]:
    """`order_by` values and what they sort by: the first model's own columns, then the columns that
    only one of the other models has (upstream refuses a name two tables share)."""
    (own, own_on), *others = models_and_relations
    columns = {column: (own_on, column) for column in upstream_columns(own)}
    seen: dict[str, int] = {}
    for model, _ in others:
        for column in upstream_columns(model):
            seen[column] = seen.get(column, 0) + 1
    for model, on in others:
        for column in upstream_columns(model):
            if column not in columns and seen[column] == 1:
                columns[column] = (on, column)
    return columns


# A server's figures derived at sync (USD), sortable like its columns.
SERVER_DERIVED = ("min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly", "score", "score1")
SERVER_PRICE_ORDERS: dict[str, Order] = {
    **order_columns((ServerPrice, COLUMN), (Server, SERVER), (Region, REGION)),
    "price_monthly": (COLUMN, "price_monthly"),
    **{name: (SERVER, name) for name in SERVER_DERIVED},
    "score_per_price": (SCORE_PER_USD, ""),
}
# Orderings that leave out the prices of servers without a score, as upstream.
SCORED_ORDERS = ("score", "score_per_price")
STORAGE_PRICE_ORDERS = order_columns((StoragePrice, COLUMN), (Region, REGION), (Storage, STORAGE))
TRAFFIC_PRICE_ORDERS = order_columns((TrafficPrice, COLUMN), (Region, REGION))
DATABASE_STORAGE_PRICE_ORDERS = order_columns(
    (DatabaseStoragePrice, COLUMN), (Region, REGION), (DatabaseStorage, STORAGE)
)
