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
    VendorComplianceLink,
    Zone,
)
from apps.catalog.sql import table_columns


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


class VendorComplianceLinkSerializer(VendorOwnedSerializer):
    """A compliance framework a vendor implements (`/table/vendor_compliance_link`)."""

    compliance_framework_id = serializers.CharField(help_text="Compliance framework id.")

    class Meta:
        model = VendorComplianceLink
        fields = table_columns(VendorComplianceLink)


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


class PriceBreakdownSerializer(serializers.Serializer):
    """The parts of a server's prices, in `currency`: the compute price, then monthly traffic and extra storage."""

    compute_min_price = serializers.FloatField(allow_null=True, help_text="Cheapest hourly compute price.")
    compute_min_price_spot = serializers.FloatField(allow_null=True)
    compute_min_price_ondemand = serializers.FloatField(allow_null=True)
    compute_min_price_ondemand_monthly = serializers.FloatField(allow_null=True)
    traffic_inbound_hourly = serializers.FloatField(allow_null=True, help_text="monthly_inbound_traffic, per hour.")
    traffic_inbound_monthly = serializers.FloatField(allow_null=True)
    traffic_outbound_hourly = serializers.FloatField(allow_null=True)
    traffic_outbound_monthly = serializers.FloatField(allow_null=True)
    traffic_hourly = serializers.FloatField(allow_null=True)
    traffic_monthly = serializers.FloatField(allow_null=True)
    extra_storage_hourly = serializers.FloatField(allow_null=True, help_text="extra_storage_size, per hour.")
    extra_storage_monthly = serializers.FloatField(allow_null=True)


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
    selected_benchmark_score = serializers.FloatField(
        allow_null=True, help_text="The server's best score of benchmark_id (null without it)."
    )
    selected_benchmark_score_per_price = serializers.FloatField(
        allow_null=True, help_text="selected_benchmark_score per USD/hour of min_price."
    )
    price_breakdown = PriceBreakdownSerializer(help_text="What min_price and its siblings are made of.")

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
            "selected_benchmark_score",
            "selected_benchmark_score_per_price",
            "price_breakdown",
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
    databases = serializers.IntegerField(help_text="Managed database offerings.")
    active_databases = serializers.IntegerField(help_text="Managed database offerings with the status active.")
    database_prices = serializers.IntegerField(help_text="Prices of managed databases.")
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
    "vendor_compliance_link": VendorComplianceLinkSerializer,
}
