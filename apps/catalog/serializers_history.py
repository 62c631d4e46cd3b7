"""Response shapes of the catalog history, for the OpenAPI document (apps/catalog/selectors/history.py
builds the rows; tests/catalog/test_history_api.py checks that each row has exactly these fields)."""

from typing import Any

from rest_framework import serializers

from apps.catalog import choices
from apps.catalog.models import CHANGE_KEY_COLUMNS


class ChangeKeySerializer(serializers.Serializer):
    """The changed row's natural key: the columns its table has."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {column: serializers.CharField(required=False) for column in CHANGE_KEY_COLUMNS}


class CatalogChangeSerializer(serializers.Serializer):
    """One change a sync made to the catalog."""

    id = serializers.IntegerField(help_text="Record id; larger is newer.")
    sync = serializers.IntegerField(help_text="The sync that loaded the change (`/syncs`).")
    time = serializers.DateTimeField(help_text="When that sync loaded it (UTC).")
    table = serializers.ChoiceField(choices=choices.TrackedTable.choices, help_text="Catalog table.")
    kind = serializers.ChoiceField(choices=choices.ChangeKind.choices, help_text="added, removed, status or changed.")
    key = ChangeKeySerializer(help_text="The row's natural key, e.g. vendor_id and server_id.")
    field = serializers.CharField(
        allow_null=True, help_text="The changed column (kind changed), `status` (kind status); null otherwise."
    )
    old = serializers.JSONField(
        allow_null=True,
        help_text="The value before (changed, status); the whole row for removed (its status and columns); else null.",
    )
    new = serializers.JSONField(
        allow_null=True, help_text="The value after (changed, status); the whole row for added; else null."
    )
    currency = serializers.CharField(
        allow_null=True, help_text="Price tables: the row's currency (before the change); null for other tables."
    )


class ChangeCountsField(serializers.DictField):
    """{table: {kind: count}}."""

    def __init__(self, **kwargs: Any):
        super().__init__(child=serializers.DictField(child=serializers.IntegerField()), **kwargs)


class SyncSerializer(serializers.Serializer):
    """A sync that loaded a catalog."""

    id = serializers.IntegerField()
    time = serializers.DateTimeField(help_text="When the catalog was loaded (UTC).")
    started_at = serializers.DateTimeField(help_text="When the sync started (UTC).")
    data_hash = serializers.CharField(help_text="Hash of the source data.")
    schema_version = serializers.CharField(help_text="Upstream alembic revision.")
    rows = serializers.DictField(child=serializers.IntegerField(), help_text="Rows loaded per table.")
    changes = ChangeCountsField(
        allow_null=True,
        help_text="Changes recorded per table and kind; null when nothing was compared (a first sync, history off).",
    )


class PriceSegmentSerializer(serializers.Serializer):
    """A price while it held: from `from` until `until`."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword: the fields are named here rather than as class attributes.
        return {
            "from": serializers.DateTimeField(
                help_text="Since when (the sync that loaded it, or the start of Keeper's history of the catalog)."
            ),
            "until": serializers.DateTimeField(allow_null=True, help_text="Until when; null: the current price."),
            "price": serializers.FloatField(allow_null=True, help_text="Price per unit, in `currency`."),
            "price_monthly": serializers.FloatField(
                allow_null=True, help_text="On-demand hourly prices: for 730 hours (tier caps applied), in `currency`."
            ),
        }


class PriceHistorySerializer(serializers.Serializer):
    """One price of the server (a zone and allocation) over time."""

    region_id = serializers.CharField()
    zone_id = serializers.CharField()
    country_id = serializers.CharField(allow_null=True, help_text="The region's country; null when unknown.")
    allocation = serializers.ChoiceField(choices=choices.Allocation.choices)
    operating_system = serializers.CharField(allow_null=True)
    unit = serializers.CharField(allow_null=True, help_text="Billing unit of `price`.")
    currency = serializers.CharField(help_text="Currency of the prices.")
    prices = PriceSegmentSerializer(many=True, help_text="Oldest first; only while the price was active.")
