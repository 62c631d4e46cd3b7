from django.db import migrations

# Each AI assist call is a paid model call that holds a worker for seconds: ten times a search.
SEED_COSTS = {
    "/ai/assist_server_filters": 10,
    "/ai/assist_server_price_filters": 10,
    "/ai/assist_storage_price_filters": 10,
    "/ai/assist_traffic_price_filters": 10,
}


def seed(apps, schema_editor):
    RouteCost = apps.get_model("throttling", "RouteCost")
    for route, cost in SEED_COSTS.items():
        RouteCost.objects.get_or_create(route=route, defaults={"cost": cost})


def unseed(apps, schema_editor):
    apps.get_model("throttling", "RouteCost").objects.filter(route__in=SEED_COSTS).delete()


class Migration(migrations.Migration):
    dependencies = [("throttling", "0003_quota_usage_and_bucket_bounds")]

    operations = [migrations.RunPython(seed, unseed)]
