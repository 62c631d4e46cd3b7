from django.db import migrations

# GET /changes.atom is /changes as an Atom feed (issue 18): the same query of the same table, the same cost.
SEED_COSTS = {"/changes.atom": 3}


def seed(apps, schema_editor):
    RouteCost = apps.get_model("throttling", "RouteCost")
    for route, cost in SEED_COSTS.items():
        RouteCost.objects.get_or_create(route=route, defaults={"cost": cost})


def unseed(apps, schema_editor):
    apps.get_model("throttling", "RouteCost").objects.filter(route__in=SEED_COSTS).delete()


class Migration(migrations.Migration):
    dependencies = [("throttling", "0006_seed_database_route_costs")]

    operations = [migrations.RunPython(seed, unseed)]
