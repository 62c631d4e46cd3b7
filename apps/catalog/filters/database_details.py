"""FilterSets of one managed database's resources: `/database/{vendor}/{database}/prices` and
`/database/{vendor}/{database}/price_history`, declared as their server counterparts are (the same
parameters, over the database's prices)."""

from apps.catalog.criteria import DatabasePriceQuery
from apps.catalog.filters.history import PriceHistoryFilterSet
from apps.catalog.filters.server_details import ServerPlacesFilterSet
from apps.catalog.filters.times import TimeFilter
from apps.catalog.models import DatabasePrice


class DatabasePricesFilterSet(ServerPlacesFilterSet):
    """Parameters of `GET /database/{vendor}/{database}/prices`: `countries`, `vendor_regions` (with upstream's
    limit for anonymous callers) and `currency`, as for a server's prices; and Keeper's `price_change_since`."""

    price_change_since = TimeFilter(
        method="keep",
        label=(
            "Only prices whose price changed at a sync since this time (RFC 3339 with offset, or a date); "
            "the rows then carry `previous_price`, the price before the first such change."
        ),
    )

    class Meta:
        model = DatabasePrice
        fields: list[str] = []

    @property
    def query(self) -> DatabasePriceQuery:
        """The validated query as the selector's value object (call after `is_valid()`)."""
        return DatabasePriceQuery(
            places=self.places,
            currency=self.currency_code,
            price_change_since=self.params.get("price_change_since"),
        )


class DatabasePriceHistoryFilterSet(PriceHistoryFilterSet):
    """Parameters of `GET /database/{vendor}/{database}/price_history`: those of a server's price history."""

    class Meta:
        model = DatabasePrice
        fields: list[str] = []
