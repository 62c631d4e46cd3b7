"""keys 0005: keys created by a key before keys had parents get theirs from the audit log, on the real migration."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("keys", "0004_capability_tokens_and_traffic"), ("keys", "0005_key_parent")


@pytest.fixture
def migrate(transactional_db):
    def to(targets):
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield to
    to(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_a_key_created_by_a_key_of_the_same_owner_gets_it_as_parent(migrate):
    old = migrate([BEFORE])
    User, ApiKey, AuditEvent = (
        old.get_model(*name.split(".")) for name in ("auth.User", "keys.ApiKey", "keys.AuditEvent")
    )
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")

    def key(owner, key_id: str, scope: str = "write"):
        fields = {"prefix": f"keeper_{key_id}", "last_chars": "abcd", "secret_hash": "x", "name": key_id}
        return ApiKey.objects.create(key_id=key_id, owner=owner, scope=scope, **fields)

    def created(child, actor: str) -> None:
        AuditEvent.objects.create(key=child, key_ref="", action="create", actor=actor)

    parent, staff_key, bobs = key(alice, "P" * 12), key(alice, "S" * 12, "admin"), key(bob, "B" * 12)
    child, by_session, by_staff_key, by_other_owner = (key(alice, c * 12) for c in "CDEF")
    created(child, f"key:keeper_{parent.key_id}…abcd")
    created(by_session, "session:alice")
    created(by_staff_key, f"key:keeper_{staff_key.key_id}…abcd")
    created(by_other_owner, f"key:keeper_{bobs.key_id}…abcd")

    new = migrate([AFTER])

    parents = dict(new.get_model("keys", "ApiKey").objects.values_list("key_id", "parent__key_id"))
    assert parents == {
        "P" * 12: None,
        "S" * 12: None,
        "B" * 12: None,
        "C" * 12: "P" * 12,
        "D" * 12: None,
        "E" * 12: None,
        "F" * 12: None,
    }
