"""Fixtures of the accounts tests."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_verifier_and_limiters(fresh_state) -> None:
    """Each test starts with an empty token cache and empty credit pools."""
