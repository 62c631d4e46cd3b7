"""Response shapes of the catalog API.

The hot endpoints build their rows in selectors.py; these serializers describe
those rows (OpenAPI) and are checked against them in the tests.
"""

from rest_framework import serializers

from apps.catalog.models import (
    Benchmark,
    ComplianceFramework,
    Country,
    Region,
    Server,
    Storage,
    Vendor,
    Zone,
)
from apps.catalog.selectors import table_columns


class CatalogRowSerializer(serializers.ModelSerializer):
    """Upstream columns; foreign keys appear as their natural-key ids (`vendor_id`)."""

    class Meta:
        fields: list[str] = []
        read_only_fields: list[str] = []


class CountrySerializer(CatalogRowSerializer):
    class Meta:
        model = Country
        fields = table_columns(Country)


class ComplianceFrameworkSerializer(CatalogRowSerializer):
    class Meta:
        model = ComplianceFramework
        fields = table_columns(ComplianceFramework)


class VendorSerializer(CatalogRowSerializer):
    country_id = serializers.CharField(help_text="Country of the headquarters (ISO 3166-1 alpha-2).")

    class Meta:
        model = Vendor
        fields = table_columns(Vendor)


class VendorOwnedSerializer(CatalogRowSerializer):
    vendor_id = serializers.CharField(help_text="Vendor id.")


class RegionSerializer(VendorOwnedSerializer):
    country_id = serializers.CharField(help_text="Country (ISO 3166-1 alpha-2).")

    class Meta:
        model = Region
        fields = table_columns(Region)


class RegionWithVendorSerializer(RegionSerializer):
    vendor = VendorSerializer()

    class Meta(RegionSerializer.Meta):
        fields = [*RegionSerializer.Meta.fields, "vendor"]


class ZoneSerializer(VendorOwnedSerializer):
    class Meta:
        model = Zone
        fields = table_columns(Zone)


class StorageSerializer(VendorOwnedSerializer):
    class Meta:
        model = Storage
        fields = table_columns(Storage)


class BenchmarkSerializer(CatalogRowSerializer):
    class Meta:
        model = Benchmark
        fields = table_columns(Benchmark)


class ServerSerializer(VendorOwnedSerializer):
    class Meta:
        model = Server
        fields = table_columns(Server)


class ServerSearchResultSerializer(ServerSerializer):
    """A `/servers` row: the server, its vendor, its stress-ng scores and cheapest prices."""

    vendor = VendorSerializer()
    score = serializers.FloatField(allow_null=True, help_text="stress-ng CPU score, all cores.")
    score1 = serializers.FloatField(allow_null=True, help_text="stress-ng CPU score, one core.")
    price = serializers.FloatField(
        allow_null=True, help_text="The cheapest price selected by best_price_allocation, in `currency`."
    )
    min_price = serializers.FloatField(allow_null=True, help_text="Cheapest hourly price, in `currency`.")
    min_price_spot = serializers.FloatField(allow_null=True, help_text="Cheapest spot hourly price.")
    min_price_ondemand = serializers.FloatField(allow_null=True, help_text="Cheapest on-demand hourly price.")
    min_price_ondemand_monthly = serializers.FloatField(
        allow_null=True, help_text="Cheapest on-demand price for 730 hours (tier caps applied)."
    )
    score_per_price = serializers.FloatField(allow_null=True, help_text="`score` per USD/hour of the cheapest price.")

    class Meta(ServerSerializer.Meta):
        fields = [
            *ServerSerializer.Meta.fields,
            "vendor",
            "score",
            "score1",
            "price",
            "min_price",
            "min_price_spot",
            "min_price_ondemand",
            "min_price_ondemand_monthly",
            "score_per_price",
        ]


class StatsSerializer(serializers.Serializer):
    vendors = serializers.IntegerField()
    regions = serializers.IntegerField()
    zones = serializers.IntegerField()
    servers = serializers.IntegerField()
    active_servers = serializers.IntegerField()
    server_prices = serializers.IntegerField()
    benchmarks = serializers.IntegerField()
    benchmark_scores = serializers.IntegerField()
    last_synced_at = serializers.DateTimeField(allow_null=True)


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    packages = serializers.DictField(child=serializers.CharField(allow_null=True))
    database_last_updated = serializers.DateTimeField(allow_null=True)
    database_hash = serializers.CharField(allow_null=True)
    schema_version = serializers.CharField(allow_null=True)
    last_sync_status = serializers.CharField(allow_null=True)


TABLE_SERIALIZERS = {
    "country": CountrySerializer,
    "compliance_framework": ComplianceFrameworkSerializer,
    "vendor": VendorSerializer,
    "region": RegionSerializer,
    "zone": ZoneSerializer,
    "server": ServerSerializer,
    "storage": StorageSerializer,
    "benchmark": BenchmarkSerializer,
}
