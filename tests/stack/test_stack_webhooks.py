"""Webhook delivery on the scaled-out stack: an endpoint added through gunicorn, a test event recorded there, and
its delivery sent by the Celery worker (asked through Redis when the request's transaction committed, and by
beat's deliver-webhooks every 5 s), signed so that another implementation (svix's) verifies it.

bin/ci-stack starts the stack with KEEPER_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 and KEEPER_WEBHOOK_ALLOW_HTTP=true,
so the receiver this test starts on 127.0.0.1 may be sent to.
"""

import re

import pytest
from svix.webhooks import Webhook as SvixWebhook

from tests.fakes import FakeReceiver
from tests.live import wait_until
from tests.stack.conftest import skip_unless_required
from tests.stack.stack import Stack

pytestmark = pytest.mark.usefixtures("roomy_global_bucket")


def test_a_test_event_is_delivered_by_the_celery_worker(stack: Stack, receiver: FakeReceiver) -> None:
    created = stack.request(
        "POST", "/webhooks", key=stack.admin_key, body={"url": receiver.url(), "event_types": ["webhook.disabled"]}
    )
    if created.status == 400 and "loopback" in str(created.body):
        skip_unless_required(
            "the stack refuses 127.0.0.1 receivers: start it with KEEPER_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 and "
            "KEEPER_WEBHOOK_ALLOW_HTTP=true (bin/ci-stack does)"
        )
    assert created.status == 201, created
    endpoint, secret = created.body["id"], created.body["secret"]
    try:
        sent = stack.request("POST", f"/webhooks/{endpoint}/test", key=stack.admin_key)
        assert sent.status == 202, sent
        wait_until(lambda: len(receiver.received) == 1, timeout=60, what="the worker's delivery")
        (received,) = receiver.received
        assert received.headers["webhook-id"] == sent.body["event_id"]
        assert SvixWebhook(secret).verify(received.body, received.headers)["type"] == "webhook.test"

        def recorded() -> bool:
            listed = stack.request("GET", f"/webhooks/{endpoint}/deliveries", key=stack.admin_key)
            return listed.status == 200 and listed.body[0]["status"] == "succeeded"

        wait_until(recorded, timeout=30, what="the delivery recorded as succeeded")
        done = re.compile(
            r"Task keeper\.events\.tasks\.deliver_webhooks\[[\w-]+\] succeeded in [\d.]+s: .*" + sent.body["id"]
        )
        assert done.search(stack.log("worker"))
        assert "Task keeper.events.tasks.deliver_webhooks" not in stack.log("web")
    finally:
        assert stack.request("DELETE", f"/webhooks/{endpoint}", key=stack.admin_key).status == 204
