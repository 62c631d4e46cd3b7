"""Fixtures of the tests against a running stack (bin/keeper-stack; bin/ci-stack starts one, runs them, stops it).

Without a running stack every test here is skipped, saying how to get one.
"""

import os
from collections.abc import Iterator

import pytest

from tests.stack.stack import Stack


def skip_unless_required(reason: str) -> None:
    """Skip, or fail where the stack must be there (bin/ci-stack sets KEEPER_STACK_REQUIRED=1)."""
    if os.environ.get("KEEPER_STACK_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def stack() -> Stack:
    found = Stack.locate()
    if found is None:
        skip_unless_required(
            "no Keeper stack (KEEPER_STACK_DIR, default var/stack/): run bin/ci-stack, or bin/keeper-stack start"
        )
    try:
        found.request("GET", "/healthcheck")
    except OSError as exc:
        skip_unless_required(
            f"the Keeper stack in {found.dir} is not running ({exc.__class__.__name__}): bin/keeper-stack start"
        )
    return found


@pytest.fixture(scope="session")
def roomy_global_bucket(stack: Stack) -> Iterator[None]:
    """The global token bucket (100 requests/s by default) opened wide for the duration.

    These tests measure credit pools: a request the bucket refuses never reaches its pool, so a
    bucket that bites would make every count depend on the clients' speed. The bucket has its own
    tests (tests/throttling); its setting is put back afterwards.
    """
    before = stack.request("GET", "/config", key=stack.admin_key)
    assert before.status == 200, before
    wide = stack.request(
        "PATCH", "/config", key=stack.admin_key, body={"rate_limit": 1_000_000, "rate_burst": 1_000_000}
    )
    assert wide.status == 200, wide
    yield
    restored = stack.request(
        "PATCH",
        "/config",
        key=stack.admin_key,
        body={"rate_limit": before.body["rate_limit"], "rate_burst": before.body["rate_burst"]},
    )
    assert restored.status == 200, restored
