from rest_framework import serializers

from apps.catalog import choices
from apps.catalog.models import Watch
from keeper.api.serializers import StrictSerializerMixin
from keeper.events.models import Event


class WatchSerializer(serializers.ModelSerializer):
    feed_url = serializers.SerializerMethodField(
        help_text="The watch's Atom feed, without its token (shown once, at creation and rotation)."
    )
    last_sync = serializers.IntegerField(source="evaluated_sync", allow_null=True, read_only=True)

    class Meta:
        model = Watch
        fields = [
            "id",
            "name",
            "query",
            "owner",
            "status",
            "paused_reason",
            "paused_at",
            "last_sync",
            "evaluated_at",
            "created_at",
            "updated_at",
            "feed_url",
        ]
        read_only_fields = fields

    def get_feed_url(self, watch: Watch) -> str:
        return f"/watches/{watch.pk}/events.atom?token="


class WatchWithTokenSerializer(WatchSerializer):
    feed_token = serializers.CharField(read_only=True, help_text="Shown once: the token of the watch's Atom feed.")

    class Meta(WatchSerializer.Meta):
        fields = [*WatchSerializer.Meta.fields, "feed_token"]
        read_only_fields = fields


class WatchCreateSerializer(StrictSerializerMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100)
    query = serializers.CharField(
        max_length=2000, help_text="A catalog GET route with its query string, e.g. /servers?vendor=aws&vcpus_min=4."
    )


class WatchUpdateSerializer(StrictSerializerMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    query = serializers.CharField(max_length=2000, required=False, help_text="A new query (a new baseline).")
    status = serializers.ChoiceField(
        choices=[choices.WatchStatus.ACTIVE], required=False, help_text="active: resume a paused watch."
    )
    rotate_feed_token = serializers.BooleanField(required=False, help_text="A new feed token (the old one stops).")


class WatchEventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = Event
        fields = ["id", "type", "subject", "created_at", "data"]
        read_only_fields = fields
