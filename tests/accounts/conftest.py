"""Fixtures of the accounts tests."""

import pytest

from tests import fakes

# The fixtures of tests/fakes.py, shared with tests/throttling.
fresh_state = fakes.fresh_state
idp = fakes.idp
introspection = fakes.introspection
no_redis = fakes.no_redis
redis_url = fakes.redis_url
redis_client = fakes.redis_client
redis_cache = fakes.redis_cache


@pytest.fixture(autouse=True)
def _fresh_verifier_and_limiters(fresh_state) -> None:
    """Each test starts with an empty token cache and empty credit pools."""
