from rest_framework import serializers


class MeSerializer(serializers.Serializer):
    user_id = serializers.CharField(help_text="The caller's id (token subject, user name, or key owner).")
    auth_method = serializers.CharField(help_text="token, api_key or session.")
    credits_per_minute = serializers.IntegerField(help_text="The caller's credit pool per rolling minute.")
    is_staff = serializers.BooleanField()
    scope = serializers.CharField(allow_null=True, help_text="Scope of the API key, when called with one.")
    organization = serializers.CharField(allow_null=True)
    extra = serializers.DictField(help_text="Fields added by AUTH_TOKEN_EXTRA_FIELDS_CEL.")
