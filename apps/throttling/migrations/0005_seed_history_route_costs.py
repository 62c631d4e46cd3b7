from django.db import migrations

# The catalog history (apps/catalog/history.py): a page of changes and a server's price history are
# read from a table that grows with every sync, so they cost as much as a search of the servers.
SEED_COSTS = {
    "/changes": 3,
    "/server/<str:vendor>/<path:server>/price_history": 3,
}


def seed(apps, schema_editor):
    RouteCost = apps.get_model("throttling", "RouteCost")
    for route, cost in SEED_COSTS.items():
        RouteCost.objects.get_or_create(route=route, defaults={"cost": cost})


def unseed(apps, schema_editor):
    apps.get_model("throttling", "RouteCost").objects.filter(route__in=SEED_COSTS).delete()


class Migration(migrations.Migration):
    dependencies = [("throttling", "0004_seed_ai_route_costs")]

    operations = [migrations.RunPython(seed, unseed)]
