from django.contrib import admin

from apps.accounts.models import Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]
    fields = ["user", "role", "source"]
    # Rows added here are local grants; the claim's rows come and go with the user's tokens.
    readonly_fields = ["source"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "credits_per_minute", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]
