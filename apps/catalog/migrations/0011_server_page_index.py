from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0010_server_price_country"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="server",
            index=models.Index(
                fields=[
                    "vendor",
                    "server_id",
                    "status",
                    "vcpus",
                    "memory_amount",
                    "min_price",
                    "min_price_spot",
                    "min_price_ondemand",
                    "min_price_ondemand_monthly",
                    "score",
                    "score_per_price",
                ],
                name="server_page",
            ),
        ),
    ]
