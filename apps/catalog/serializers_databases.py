"""Response shapes of the managed-database routes (the newest Spare Cores API's Database* models).

The rows are built by the selectors (apps/catalog/selectors/databases.py and database_details.py);
these serializers describe them for the OpenAPI document and are checked against them in the tests.
"""

from rest_framework import serializers

from apps.catalog.models import Database
from apps.catalog.serializers import VendorOwnedSerializer, VendorSerializer
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
