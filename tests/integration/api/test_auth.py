"""Bearer keys: every route but health needs one; keys are stored hashed and can be revoked."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from tests.integration.api.conftest import Api, table_counts
from tests.jobs import make_jobs
from worker.domain.enums import Role

ITEM = {"line_item_id": 7, "sku_id": "a", "action": "pause"}


def test_health_and_the_openapi_document_need_no_key(api: Api) -> None:
    reply = api.call("GET", "/healthz", key=None)
    assert reply.status == 200
    assert reply.json == {"status": "ok"}
    # API tooling fetches the document before it has a key; it holds no data.
    for key in (None, "pbk_not-a-key"):
        document = api.call("GET", "/v1/openapi.json", key=key)
        assert document.status == 200
        assert document.json["openapi"].startswith("3.1")
        assert document.json["paths"]["/v1/openapi.json"]["get"]["security"] == []


def test_every_other_route_refuses_a_request_without_a_valid_key(api: Api) -> None:
    routes = [
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


def _key(api: Api, role: Role) -> Api:
    name = f"{api.submitter}-{role.value}"
    return Api(api.url, make_jobs(api.engine).keys.create(name, role).key, name, api.engine)


def test_a_submit_key_sees_and_changes_only_its_own_jobs(api: Api) -> None:
    """Another submitter's job does not exist for it: 404, never 403 (no existence oracle)."""
    other = _key(api, Role.SUBMIT)
    job = api.client.submit([ITEM])["id"]
    for method, path in [
        ("GET", f"/v1/jobs/{job}"),
        ("GET", f"/v1/jobs/{job}/items"),
        ("GET", f"/v1/jobs/{job}/items?format=csv"),
        ("POST", f"/v1/jobs/{job}/cancel"),
        ("POST", f"/v1/jobs/{job}/retry"),
        ("POST", f"/v1/jobs/{job}/revert"),
    ]:
        reply = other.call(method, path)
        assert reply.status == 404, (method, path, reply.json)
        assert reply.json == other.call(method, path.replace(str(job), "987654321")).json | {
            "detail": f"no job {job}"
        }
    assert [j["id"] for j in other.client.jobs()] == []
    assert [j["id"] for j in other.client.jobs(submitted_by=api.submitter)] == []
    assert job in [j["id"] for j in api.client.jobs()]
    assert api.call("POST", f"/v1/jobs/{job}/cancel").status == 200


def test_a_read_key_sees_every_job_and_changes_none(api: Api) -> None:
    reader = _key(api, Role.READ)
    job = api.client.submit([ITEM])["id"]
    assert reader.call("GET", f"/v1/jobs/{job}").json["submitted_by"] == api.submitter
    assert job in [j["id"] for j in reader.client.jobs(submitted_by=api.submitter)]
    assert reader.call("GET", f"/v1/jobs/{job}/items").status == 200
    before = table_counts(api.engine)
    for method, path, body in [
        ("POST", "/v1/jobs", {"items": [ITEM]}),
        ("POST", f"/v1/jobs/{job}/cancel", None),
        ("POST", f"/v1/jobs/{job}/retry", None),
        ("POST", f"/v1/jobs/{job}/revert", None),
    ]:
        reply = reader.call(method, path, body)
        assert reply.status == 403, (method, path, reply.json)
        assert "read key" in reply.json["detail"]
    assert table_counts(api.engine) == before
    assert api.client.job(job)["status"] == "queued"


def test_an_operate_key_acts_on_any_job(api: Api) -> None:
    operator = _key(api, Role.OPERATE)
    job = api.client.submit([ITEM])["id"]
    assert operator.call("POST", f"/v1/jobs/{job}/cancel").json["status"] == "cancelled"
    assert operator.call("GET", f"/v1/jobs/{job}").json["submitted_by"] == api.submitter
