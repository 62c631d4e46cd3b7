"""Response shapes of the price searches, for the OpenAPI document.

apps/catalog/selectors/prices.py builds the rows; tests/catalog/test_server_prices.py and its
siblings check that each row has exactly these fields.
"""

from rest_framework import serializers

from apps.catalog.models import ServerPrice, StoragePrice, TrafficPrice
from apps.catalog.selectors.prices import (
    SERVER_COLUMNS,
    SERVER_EXTRA_FIELDS,
    SERVER_PRICE_COLUMNS,
    STORAGE_PRICE_COLUMNS,
    TRAFFIC_PRICE_COLUMNS,
)
from apps.catalog.serializers import (
    CountrySerializer,
    RegionSerializer,
    ServerSearchResultSerializer,
    StorageSerializer,
    VendorOwnedSerializer,
    VendorSerializer,
    ZoneSerializer,
)


class RegionWithCountrySerializer(RegionSerializer):
    country = CountrySerializer(allow_null=True, help_text="The region's country; null when missing from the catalog.")

    class Meta(RegionSerializer.Meta):
        fields = [*RegionSerializer.Meta.fields, "country"]


PRICED_SERVER_FIELDS = [*SERVER_COLUMNS, *SERVER_EXTRA_FIELDS]


class PricedServerSerializer(ServerSearchResultSerializer):
    """The server of a price: as in `/servers` without its vendor (the price row has it), and with
    `score_per_price` for this price."""

    vendor = None
    price_breakdown = None
    score_per_price = serializers.FloatField(
        allow_null=True, help_text="`score` per USD/hour of this price (not of the server's cheapest)."
    )

    class Meta(ServerSearchResultSerializer.Meta):
        # As upstream's: no vendor (the price row has it), no price breakdown; no benchmark is
        # selected here, so the selected_benchmark_* fields are always null.
        fields = [*PRICED_SERVER_FIELDS]


class ServerPriceTableRowSerializer(VendorOwnedSerializer):
    """A `/table/server_prices` row: the price alone."""

    class Meta:
        model = ServerPrice
        fields = SERVER_PRICE_COLUMNS


class ServerPriceRowSerializer(ServerPriceTableRowSerializer):
    """A `/server_prices` row: the price in `currency`, with its vendor, region, zone and server."""

    price_monthly = serializers.FloatField(
        allow_null=True, help_text="Active on-demand price for 730 hours (tier caps applied), in `currency`."
    )
    vendor = VendorSerializer()
    region = RegionWithCountrySerializer(allow_null=True, help_text="Null when missing from the catalog.")
    zone = ZoneSerializer(allow_null=True, help_text="Null when missing from the catalog.")
    server = PricedServerSerializer()

    class Meta(ServerPriceTableRowSerializer.Meta):
        fields = [*SERVER_PRICE_COLUMNS, "price_monthly", "vendor", "region", "zone", "server"]


class ServerPriceSearchRowSerializer(ServerPriceRowSerializer):
    """A `/server_prices` row; with `price_change_since`, also `previous_price`."""

    previous_price = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="With price_change_since only: the price before its first change since then, in `currency`.",
    )

    class Meta(ServerPriceRowSerializer.Meta):
        fields = [*ServerPriceRowSerializer.Meta.fields, "previous_price"]


class StoragePriceRowSerializer(VendorOwnedSerializer):
    """A `/storage_prices` row: the price in `currency`, with its region, vendor and storage."""

    region = RegionWithCountrySerializer(allow_null=True, help_text="Null when missing from the catalog.")
    vendor = VendorSerializer()
    storage = StorageSerializer()

    class Meta:
        model = StoragePrice
        fields = [*STORAGE_PRICE_COLUMNS, "region", "vendor", "storage"]


class TrafficPriceRowSerializer(VendorOwnedSerializer):
    """A `/traffic_prices` row: the price in `currency`, with its region and vendor, and the monthly cost."""

    region = RegionWithCountrySerializer(allow_null=True, help_text="Null when missing from the catalog.")
    vendor = VendorSerializer()
    price_monthly_traffic = serializers.FloatField(
        help_text="Cost of `monthly_traffic` GB under the price tiers (or at `price` without tiers), in `currency`."
    )

    class Meta:
        model = TrafficPrice
        fields = [*TRAFFIC_PRICE_COLUMNS, "region", "vendor", "price_monthly_traffic"]
