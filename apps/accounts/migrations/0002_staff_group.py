from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations

# What SSO staff may do in the admin: manage keys, limits and organizations; read the rest.
MANAGE = {
    "keys": ["apikey", "keyusageday", "auditevent"],
    "throttling": ["routecost", "globalratelimit"],
    "accounts": ["organization", "membership"],
}
VIEW = {"catalog": ["syncrun", "vendor", "region", "server", "benchmark"], "auth": ["user"]}


def create_staff_group(apps, schema_editor):
    # Permissions are normally created after all migrations; this group needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=settings.KEEPER_STAFF_DJANGO_GROUP)
    wanted = [(app, model, action) for app, models in MANAGE.items() for model in models
              for action in ("view", "add", "change", "delete")]
    wanted += [(app, model, "view") for app, models in VIEW.items() for model in models]
    for app, model, action in wanted:
        permission = Permission.objects.filter(
            content_type__app_label=app, content_type__model=model, codename=f"{action}_{model}"
        ).first()
        if permission is not None:
            group.permissions.add(permission)


def remove_staff_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=settings.KEEPER_STAFF_DJANGO_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_organizations"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("keys", "0001_initial"),
        ("throttling", "0002_seed_route_costs"),
        ("catalog", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_staff_group, remove_staff_group)]
