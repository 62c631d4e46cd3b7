"""Response shapes of the managed-database routes (the newest Spare Cores API's Database* models).

The rows are built by the selectors (apps/catalog/selectors/databases.py and database_details.py);
these serializers describe them for the OpenAPI document and are checked against them in the tests.
"""

from rest_framework import serializers

from apps.catalog import choices
from apps.catalog.models import Database, DatabasePrice, DatabaseStorage, DatabaseStoragePrice
from apps.catalog.selectors.prices import DATABASE_PRICE_COLUMNS, DATABASE_STORAGE_PRICE_COLUMNS
from apps.catalog.serializers import VendorOwnedSerializer, VendorSerializer
from apps.catalog.serializers_history import PriceSegmentSerializer
from apps.catalog.serializers_prices import RegionWithCountrySerializer
from apps.catalog.sql import table_columns


class DatabaseSerializer(VendorOwnedSerializer):
    """A managed database offering: every upstream column (`/database/{vendor}/{database}`, `/table/database`)."""

    class Meta:
        model = Database
        fields = table_columns(Database)


class DatabasePriceBreakdownSerializer(serializers.Serializer):
    """The parts of a database's prices, in `currency`: the compute price, then the extra storage."""

    compute_min_price = serializers.FloatField(allow_null=True, help_text="Cheapest hourly compute price.")
    compute_min_price_ondemand = serializers.FloatField(allow_null=True)
    compute_min_price_ondemand_monthly = serializers.FloatField(allow_null=True)
    extra_storage_hourly = serializers.FloatField(allow_null=True, help_text="extra_storage_size, per hour.")
    extra_storage_monthly = serializers.FloatField(allow_null=True)


class DatabaseSearchResultSerializer(DatabaseSerializer):
    """A `/databases` row: the database, its vendor, its cheapest prices and the selected benchmark's score."""

    vendor = VendorSerializer()
    price = serializers.FloatField(allow_null=True, help_text="Same as min_price (kept for older clients).")
    min_price = serializers.FloatField(
        allow_null=True, help_text="Cheapest hourly price for best_price_allocation, extras included, in `currency`."
    )
    min_price_ondemand = serializers.FloatField(allow_null=True, help_text="Cheapest on-demand hourly price.")
    min_price_ondemand_monthly = serializers.FloatField(
        allow_null=True, help_text="Cheapest on-demand price for 730 hours (tier caps applied)."
    )
    selected_benchmark_score = serializers.FloatField(
        allow_null=True, help_text="The database's best score of benchmark_id (null without it)."
    )
    selected_benchmark_score_per_price = serializers.FloatField(
        allow_null=True, help_text="selected_benchmark_score per USD/hour of min_price."
    )
    price_breakdown = DatabasePriceBreakdownSerializer(help_text="What min_price and its siblings are made of.")

    class Meta(DatabaseSerializer.Meta):
        fields = [
            *DatabaseSerializer.Meta.fields,
            "vendor",
            "price",
            "min_price",
            "min_price_ondemand",
            "min_price_ondemand_monthly",
            "selected_benchmark_score",
            "selected_benchmark_score_per_price",
            "price_breakdown",
        ]


# --- one database's resources, its storages, their prices and the table dumps ---------------------------

PREVIOUS_PRICE_HELP = "With price_change_since only: the price before its first change since then, in `currency`."


class DatabaseStorageSerializer(VendorOwnedSerializer):
    """A storage product of managed databases: every upstream column (`/table/database_storage`)."""

    class Meta:
        model = DatabaseStorage
        fields = table_columns(DatabaseStorage)


class DatabasePriceSerializer(VendorOwnedSerializer):
    """A managed database's price alone, in `currency` (`/table/database_price`)."""

    class Meta:
        model = DatabasePrice
        fields = DATABASE_PRICE_COLUMNS


class DatabasePriceOfDatabaseSerializer(DatabasePriceSerializer):
    """A `/database/{vendor}/{database}/prices` row: an active price of the database, in `currency`; with
    `price_change_since`, also `previous_price`."""

    previous_price = serializers.FloatField(required=False, allow_null=True, help_text=PREVIOUS_PRICE_HELP)

    class Meta(DatabasePriceSerializer.Meta):
        fields = [*DATABASE_PRICE_COLUMNS, "previous_price"]


class DatabaseStoragePriceRowSerializer(VendorOwnedSerializer):
    """A `/database_storage_prices` row: the price in `currency`, with its region, vendor and database storage."""

    region = RegionWithCountrySerializer(allow_null=True, help_text="Null when missing from the catalog.")
    vendor = VendorSerializer()
    database_storage = DatabaseStorageSerializer(allow_null=True, help_text="Null when missing from the catalog.")

    class Meta:
        model = DatabaseStoragePrice
        fields = [*DATABASE_STORAGE_PRICE_COLUMNS, "region", "vendor", "database_storage"]


class DatabaseStoragePriceSearchRowSerializer(DatabaseStoragePriceRowSerializer):
    """A `/database_storage_prices` row; with `price_change_since`, also `previous_price`."""

    previous_price = serializers.FloatField(required=False, allow_null=True, help_text=PREVIOUS_PRICE_HELP)

    class Meta(DatabaseStoragePriceRowSerializer.Meta):
        fields = [*DatabaseStoragePriceRowSerializer.Meta.fields, "previous_price"]


class DatabasePriceHistorySerializer(serializers.Serializer):
    """One price of the database (a region, allocation, HA level and strategy) over time."""

    region_id = serializers.CharField()
    country_id = serializers.CharField(allow_null=True, help_text="The region's country; null when unknown.")
    allocation = serializers.ChoiceField(choices=choices.Allocation.choices)
    ha = serializers.ChoiceField(choices=choices.DatabaseHaLevel.choices, help_text="High-availability level.")
    ha_strategy = serializers.ChoiceField(
        choices=choices.DatabaseHaStrategy.choices, help_text="High-availability strategy."
    )
    unit = serializers.CharField(allow_null=True, help_text="Billing unit of `price`.")
    currency = serializers.CharField(help_text="Currency of the prices.")
    prices = PriceSegmentSerializer(many=True, help_text="Oldest first; only while the price was active.")


# `/table/{name}` of the managed-database tables dumped whole (apps/catalog/views/catalog.py's TABLE_VIEWS).
DATABASE_TABLE_SERIALIZERS = {"database": DatabaseSerializer, "database_storage": DatabaseStorageSerializer}
