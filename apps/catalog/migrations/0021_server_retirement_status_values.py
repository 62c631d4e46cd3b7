"""Servers synced before migration 0019 kept upstream's retirement statuses as its member names (the server
status had only the active/inactive choices the importer translates): spelled as the API answers them now."""

from django.db import migrations

FROM_NAMES = [
    "UPDATE catalog_server SET status = 'planned_for_retirement' WHERE status = 'PLANNED_FOR_RETIREMENT'",
    "UPDATE catalog_server SET status = 'retired' WHERE status = 'RETIRED'",
]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0020_watches"),
    ]

    operations = [migrations.RunSQL(FROM_NAMES, reverse_sql=migrations.RunSQL.noop)]
