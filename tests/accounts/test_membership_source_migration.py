"""accounts 0003: memberships made before their origin was recorded, on the real migration."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("accounts", "0002_staff_group"), ("accounts", "0003_membership_source")


@pytest.fixture
def migrate(transactional_db):
    def to(target):
        executor = MigrationExecutor(connection)
        executor.migrate([target])
        return executor.loader.project_state([target]).apps

    yield to
    to(AFTER)


def test_token_users_memberships_become_the_claims_and_local_users_stay_local(migrate):
    old = migrate(BEFORE)
    User, Organization, Membership = (
        old.get_model(*name.split(".")) for name in ("auth.User", "accounts.Organization", "accounts.Membership")
    )
    acme = Organization.objects.create(slug="acme", name="Acme")
    Membership.objects.create(organization=acme, user=User.objects.create(username="idp:ann"), role="admin")
    Membership.objects.create(organization=acme, user=User.objects.create(username="alice"), role="admin")

    new = migrate(AFTER)

    rows = new.get_model("accounts", "Membership").objects.values_list("user__username", "role", "source")
    assert sorted(rows) == [("alice", "admin", "local"), ("idp:ann", "admin", "claim")]
