from django.db import migrations

# The Spare Cores API's costs for its heavier routes.
SEED_COSTS = {
    "/servers": 3,
    "/server_prices": 5,
    "/table/server_prices": 10,
    "/benchmark_score_stats": 10,
}


def seed(apps, schema_editor):
    RouteCost = apps.get_model("throttling", "RouteCost")
    GlobalRateLimit = apps.get_model("throttling", "GlobalRateLimit")
    for route, cost in SEED_COSTS.items():
        RouteCost.objects.get_or_create(route=route, defaults={"cost": cost})
    GlobalRateLimit.objects.get_or_create(pk=1)


def unseed(apps, schema_editor):
    apps.get_model("throttling", "RouteCost").objects.filter(route__in=SEED_COSTS).delete()


class Migration(migrations.Migration):
    dependencies = [("throttling", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
