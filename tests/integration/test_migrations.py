"""The migrations, as CI checks them: they match the models, and every one of them goes down and
up again on a database of its own."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from worker.db.migrate import alembic_config, check, downgrade, upgrade


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if "alembic_version" not in sa.inspect(conn).get_table_names():
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_alembic_check_is_clean_on_a_freshly_migrated_database(fresh_database: str) -> None:
    upgrade(fresh_database)
    check(fresh_database)  # raises when the models and the migrations disagree


def test_alembic_check_catches_a_schema_that_drifted(fresh_database: str) -> None:
    """The check above can fail: an index the models declare, missing from the database."""
    upgrade(fresh_database)
    engine = sa.create_engine(fresh_database)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_jobs_finished_at_unpruned"))
    engine.dispose()
    with pytest.raises(Exception, match="New upgrade operations detected"):
        check(fresh_database)


def test_base_to_head_to_base_to_head(fresh_database: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(fresh_database)).get_current_head()
    upgrade(fresh_database)
    assert _revision(fresh_database) == head
    assert {"jobs", "chunks", "items", "api_keys"} <= _tables(fresh_database)
    downgrade(fresh_database, revision="base")
    assert _tables(fresh_database) <= {"alembic_version"}
    upgrade(fresh_database)
    assert _revision(fresh_database) == head
    check(fresh_database)


def test_each_revision_goes_down_and_up_again(fresh_database: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(fresh_database))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert len(revisions) >= 3
    for revision in revisions:
        upgrade(fresh_database, revision=revision)
        assert _revision(fresh_database) == revision
        downgrade(fresh_database, revision="-1")
        assert _revision(fresh_database) == script.get_revision(revision).down_revision
        upgrade(fresh_database, revision=revision)
        assert _revision(fresh_database) == revision


def test_keys_made_before_roles_existed_operate(fresh_database: str) -> None:
    """A key made when every key could do everything keeps doing so; new ones choose."""
    upgrade(fresh_database, revision="5e1f0c2a9d47")
    engine = sa.create_engine(fresh_database)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO api_keys (name, key_hash, prefix) VALUES ('old', 'h', 'p')")
        )
    upgrade(fresh_database)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT role FROM api_keys")).scalar_one() == "operate"
    engine.dispose()
