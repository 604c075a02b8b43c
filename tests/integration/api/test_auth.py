"""Bearer keys: every route but health needs one; keys are stored hashed and can be revoked."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from tests.integration.api.conftest import Api
from tests.jobs import make_jobs

ITEM = {"line_item_id": 7, "sku_id": "a", "action": "pause"}


def test_health_needs_no_key_and_checks_the_database(api: Api) -> None:
    reply = api.call("GET", "/healthz", key=None)
    assert reply.status == 200
    assert reply.json == {"status": "ok"}


def test_every_other_route_refuses_a_request_without_a_valid_key(api: Api) -> None:
    routes = [
        ("GET", "/v1/openapi.json"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/1"),
        ("GET", "/v1/jobs/1/items"),
        ("POST", "/v1/jobs/1/retry"),
        ("POST", "/v1/jobs/1/cancel"),
        ("POST", "/v1/jobs/1/revert"),
    ]
    for method, path in routes:
        for key in (None, "pbk_not-a-key", ""):
            reply = api.call(method, path, {"items": [ITEM]}, key=key)
            assert reply.status == 401, (method, path, key)
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            assert reply.json["status"] == 401
    wrong_scheme = api.call(
        "GET", "/v1/jobs", headers={"Authorization": f"Basic {api.key}"}, key=None
    )
    assert wrong_scheme.status == 401


def test_a_key_is_stored_only_as_its_hash_and_names_the_submitter(api: Api) -> None:
    with api.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT key_hash, prefix FROM api_keys WHERE name = :n"), {"n": api.submitter}
        ).one()
        everything = conn.execute(sa.text("SELECT * FROM api_keys")).all()
    assert stored.key_hash == hashlib.sha256(api.key.encode()).hexdigest()
    assert api.key.startswith(stored.prefix)
    assert len(stored.prefix) < len(api.key) // 3
    assert not any(api.key in str(value) for row in everything for value in row)

    reply = api.call("POST", "/v1/jobs", {"items": [ITEM]})
    assert reply.status == 201
    assert reply.json["submitted_by"] == api.submitter


def test_a_revoked_key_is_refused_at_its_next_request(api: Api) -> None:
    assert api.call("GET", "/v1/jobs").status == 200
    with api.engine.connect() as conn:
        key_id = conn.execute(
            sa.text("SELECT id FROM api_keys WHERE name = :n"), {"n": api.submitter}
        ).scalar_one()
    assert make_jobs(api.engine).keys.revoke(key_id)
    reply = api.call("GET", "/v1/jobs")
    assert reply.status == 401
    assert api.key not in reply.body.decode()
    assert not make_jobs(api.engine).keys.revoke(10**12)
