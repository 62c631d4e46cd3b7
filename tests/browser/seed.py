"""Prepare a live Keeper's database for the browser checks: migrated, the catalog synced, a superuser,
an API key and its past usage.

Run in the server's environment (`python -m tests.browser.seed`), never in the test process: that
one is pytest-django's, with a test database of its own. One process for every step saves a Django
start-up each. Prints the key as JSON on stdout.
"""

import io
import json
import os
from datetime import timedelta

import django

# Requests, errors and rate-limited answers on each of the last days (today comes from real requests).
PAST_USAGE = {1: (120, 9, 3), 2: (80, 0, 0), 3: (200, 40, 25), 5: (15, 2, 0), 8: (60, 6, 1), 13: (30, 0, 0)}


def seed(*, username: str, password: str) -> dict[str, object]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from apps.keys.models import KeyUsageDay
    from apps.keys.policy import Actor
    from apps.keys.services import key_create

    call_command("migrate", interactive=False, verbosity=0)
    call_command("sync_catalog", no_progress=True, stdout=io.StringIO())
    user = get_user_model().objects.create_superuser(username=username, email="", password=password)
    issued = key_create(owner=user, name="browser check", actor=Actor("browser-check"))
    today = timezone.now().date()
    KeyUsageDay.objects.bulk_create(
        KeyUsageDay(
            key=issued.api_key,
            day=today - timedelta(days=ago),
            requests=requests,
            errors=errors,
            rate_limited=rate_limited,
            credits=requests,
            endpoints={"/servers": requests},
        )
        for ago, (requests, errors, rate_limited) in PAST_USAGE.items()
    )
    past_days = sorted((today - timedelta(days=ago)).isoformat() for ago in PAST_USAGE)
    return {"key_pk": issued.api_key.pk, "key": issued.value, "past_usage_days": past_days}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keeper.settings")
    django.setup()
    seeded = seed(username=os.environ["BROWSER_ADMIN_USERNAME"], password=os.environ["BROWSER_ADMIN_PASSWORD"])
    print(json.dumps(seeded))
