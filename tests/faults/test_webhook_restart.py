"""Webhook delivery survives a killed worker: the process sending a delivery is killed (SIGKILL) while the receiver
holds the request, another is started, and the event is delivered, with the same webhook-id, and both attempts are
in the delivery's log (the first as interrupted). Runs on the fault stack's PostgreSQL, with `manage.py
run_schedule` (the embedded setup's scheduler, no Redis) as the delivering process.

The first process gives an attempt 60 s, so it is surely still waiting when it is killed; the second gives one 1 s,
so it judges the first one's claim expired after 2 x 1 + 5 s (delivery.lease_seconds) rather than 2 x 60 + 5 s.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from svix.webhooks import Webhook as SvixWebhook

from tests.fakes import FakeReceiver, run_django
from tests.faults.conftest import Stack
from tests.live import PROJECT, wait_until

NOT_INHERITED = ("AUTH_", "OIDC_", "RATE_LIMIT_", "KEEPER_", "REDIS_URL", "DATABASE_URL", "SENTRY_")


def environment(stack: Stack, timeout: int) -> dict[str, str]:
    return {
        "DATABASE_URL": stack.postgres.url,
        "KEEPER_TOKEN_KEY_SECRET": "webhook-restart-test",
        "KEEPER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "KEEPER_WEBHOOK_ALLOW_HTTP": "true",
        "KEEPER_WEBHOOK_TIMEOUT_SECONDS": str(timeout),
        "KEEPER_CATALOG_SYNC_INTERVAL_MINUTES": "600",
        "SC_DATA_NO_UPDATE": "1",
    }


class Scheduler:
    """`manage.py run_schedule` in its own process, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        inherited = {name: value for name, value in os.environ.items() if not name.startswith(NOT_INHERITED)}
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_schedule"],
            cwd=PROJECT,
            env={**inherited, "DJANGO_SETTINGS_MODULE": "keeper.settings", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self.log.close()


def django(stack: Stack, code: str) -> dict:
    done = run_django(code, environment(stack, 1), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_delivery_killed_mid_way_is_delivered_by_the_next_process(keeper: Stack, receiver: FakeReceiver, tmp_path):
    created = django(
        keeper,
        f"""
import json
from django.db import transaction
from keeper.events.services import record_event, webhook_create
endpoint, secret = webhook_create(owner="restart", staff=False, url={receiver.url()!r}, event_types=["key.expiring"])
with transaction.atomic():
    event = record_event("restart", "key.expiring", {{"key_id": "k-restart"}})
print(json.dumps({{"endpoint": endpoint.public_id, "secret": secret, "event": event.public_id}}))
""",
    )
    receiver.hang()
    first = Scheduler(environment(keeper, 60), tmp_path / "first.log")
    try:
        wait_until(lambda: len(receiver.received) == 1, timeout=60, what="the first process's attempt")
    finally:
        first.kill()
    receiver.release()  # its answer goes to a dead socket
    second = Scheduler(environment(keeper, 1), tmp_path / "second.log")
    try:
        wait_until(lambda: len(receiver.received) == 2, timeout=60, what="the second process's attempt")
        state: dict = {}

        def recorded() -> bool:
            state.update(django(keeper, _STATE.format(endpoint=created["endpoint"])))
            return state["status"] != "pending"

        wait_until(recorded, timeout=30, what="the second attempt to be recorded")
    finally:
        second.kill(signal.SIGTERM)
    assert state == {"status": "succeeded", "log": [[1, "interrupted", None], [2, "succeeded", 200]]}
    assert [r.headers["webhook-id"] for r in receiver.received] == [created["event"]] * 2
    assert receiver.received[0].body == receiver.received[1].body
    for received in receiver.received:
        assert SvixWebhook(created["secret"]).verify(received.body, received.headers)["data"] == {"key_id": "k-restart"}
    django(keeper, _CLEANUP.format(endpoint=created["endpoint"]))


_STATE = """
import json
from keeper.events.models import WebhookDelivery
delivery = WebhookDelivery.objects.get(endpoint__public_id={endpoint!r})
log = list(delivery.attempt_log.values_list("number", "outcome", "status_code"))
print(json.dumps({{"status": delivery.status, "log": log}}))
"""
_CLEANUP = """
import json
from keeper.events.models import Event, WebhookEndpoint
WebhookEndpoint.objects.filter(public_id={endpoint!r}).delete()
print(json.dumps({{"deleted": Event.objects.filter(owner="restart").delete()[0]}}))
"""
