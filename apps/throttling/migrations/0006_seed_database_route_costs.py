from django.db import migrations

# Managed databases, as the newest Spare Cores API charges them (a search as /servers; the whole price
# table as /table/server_prices), and a database's price history as a server's.
SEED_COSTS = {
    "/databases": 3,
    "/table/database_price": 10,
    "/database/<str:vendor>/<path:database>/price_history": 3,
}


def seed(apps, schema_editor):
    RouteCost = apps.get_model("throttling", "RouteCost")
    for route, cost in SEED_COSTS.items():
        RouteCost.objects.get_or_create(route=route, defaults={"cost": cost})


def unseed(apps, schema_editor):
    apps.get_model("throttling", "RouteCost").objects.filter(route__in=SEED_COSTS).delete()


class Migration(migrations.Migration):
    dependencies = [("throttling", "0005_seed_history_route_costs")]

    operations = [migrations.RunPython(seed, unseed)]
