"""AI assist under live gunicorn: calls waiting on a silent provider hold no worker, and are capped.

One worker, so every request here is served by the process whose calls are waiting. The provider's
timeout is long: what is asserted is what gets answered while the calls wait, not how fast.
"""

import os
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.catalog.test_ai_assist import API_KEY, MODEL, NO_STORE, SERVERS, FakeOpenAI
from tests.live import Answer, LiveKeeper, LiveKeepers, wait_until

CALLS_PER_PROCESS = 2
PROVIDER_TIMEOUT_SECONDS = 20

pytestmark = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="this test serves a SQLite database of its own; the SQLite run covers it",
)


class AssistCall(threading.Thread):
    """One GET /ai/assist_server_filters, its answer kept."""

    def __init__(self, keeper: LiveKeeper, text: str):
        super().__init__(daemon=True)
        self.keeper, self.text = keeper, text
        self.answer: Answer | None = None

    def run(self) -> None:
        self.answer = self.keeper.get(f"{SERVERS}?{urlencode({'text': self.text})}", timeout=60)


@pytest.fixture
def provider() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def keeper(provider: FakeOpenAI, live_keeper: LiveKeepers) -> Iterator[LiveKeeper]:
    server = live_keeper(
        workers=1,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=provider.base_url,
        OPENAI_MODEL=MODEL,
        OPENAI_TIMEOUT_SECONDS=str(PROVIDER_TIMEOUT_SECONDS),
        KEEPER_AI_CALLS_PER_PROCESS=str(CALLS_PER_PROCESS),
    )
    yield server
    # Calls still held by the provider end now, before the server is stopped.
    provider.release()


def test_calls_waiting_on_a_silent_provider_hold_no_worker_and_more_than_the_cap_are_refused(keeper, provider):
    assert len(keeper.workers()) == 1
    provider.call_tool({"vcpus_min": 4})
    provider.mode = "hold"
    calls = [AssistCall(keeper, f"four cores, call {number}") for number in range(CALLS_PER_PROCESS)]
    for call in calls:
        call.start()
    # Every call has reached the provider, so each is waiting in the one worker.
    wait_until(lambda: len(provider.calls) == CALLS_PER_PROCESS, timeout=10, what="every call to reach the provider")

    health = keeper.get("/healthcheck")
    servers = keeper.get("/servers?vcpus_min=2")
    beyond = keeper.get(f"{SERVERS}?text=one+more")

    # All three were answered while the provider still held every call.
    assert [call.answer for call in calls] == [None] * CALLS_PER_PROCESS
    assert health.status == 200, health.body
    assert servers.status == 200, servers.body
    assert servers.json() and all(row["vcpus"] >= 2 for row in servers.json())
    assert beyond.status == 503
    assert beyond.headers["content-type"] == "application/json"
    assert beyond.headers["cache-control"] == NO_STORE
    assert beyond.json() == {
        "detail": f"{CALLS_PER_PROCESS} AI assist calls are under way on this server already; try again later.",
        "code": "ai_busy",
    }
    # A call under way ends within the provider's timeout, freeing its place.
    assert 1 <= int(beyond.headers["retry-after"]) <= PROVIDER_TIMEOUT_SECONDS
    assert len(provider.calls) == CALLS_PER_PROCESS, "the call beyond the cap is never sent"

    provider.release()
    for call in calls:
        call.join(timeout=PROVIDER_TIMEOUT_SECONDS + 10)
    for call in calls:
        assert call.answer is not None
        assert call.answer.status == 200, call.answer.body
        assert call.answer.json() == {"vcpus_min": 4}
        assert call.answer.headers["cache-control"] == NO_STORE
    # Their places are free again.
    again = keeper.get(f"{SERVERS}?text=again")
    assert again.status == 200, again.body
    assert len(provider.calls) == CALLS_PER_PROCESS + 1
