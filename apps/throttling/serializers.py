from rest_framework import serializers

from apps.throttling.models import GlobalRateLimit
from keeper.api.serializers import StrictSerializerMixin


class GlobalRateLimitSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    rate_limit = serializers.FloatField(min_value=0.001, max_value=1_000_000, help_text="Requests per second.")
    rate_burst = serializers.IntegerField(min_value=1, max_value=1_000_000, help_text="Bucket size.")

    class Meta:
        model = GlobalRateLimit
        fields = ["rate_limit", "rate_burst", "updated_at"]
        read_only_fields = ["updated_at"]
