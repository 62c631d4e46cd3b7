"""catalog 0021: servers synced before the server status had the retirement states kept upstream's member names;
the real migration spells them as the API answers them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.catalog.upstream import servers_catalog

BEFORE, AFTER = ("catalog", "0020_watches"), ("catalog", "0021_server_retirement_status_values")
STORED_BEFORE = {
    "active": "active",
    "inactive": "inactive",
    "planned": "PLANNED_FOR_RETIREMENT",
    "retired": "RETIRED",
}


@pytest.fixture
def migrate(transactional_db):
    def to(targets):
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield to
    to(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_retirement_statuses_stored_as_member_names_are_spelled_as_values(migrate, sync_upstream):
    sync_upstream(servers_catalog(dict.fromkeys(STORED_BEFORE, {})))
    old = migrate([BEFORE])
    Server = old.get_model("catalog", "Server")
    for server, status in STORED_BEFORE.items():
        Server.objects.filter(server_id=server).update(status=status)

    new = migrate([AFTER])

    statuses = dict(new.get_model("catalog", "Server").objects.values_list("server_id", "status"))
    assert statuses == {
        "active": "active",
        "inactive": "inactive",
        "planned": "planned_for_retirement",
        "retired": "retired",
    }
