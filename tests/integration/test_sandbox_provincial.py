"""The S2-S4 sandbox servers over real HTTP on 127.0.0.1: auth, paging, windows, clock and faults."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from ingestion.sandbox.provincial import serve_centres, serve_dossiers, serve_feedback

TOKEN = "/auth/realms/digo/protocol/openid-connect/token"
GRANT = {"grant_type": "client_credentials", "client_id": "chiso"}
AS_OF = "2026-10-15T12:00:00+07:00"
SCALE = {"dossiers_per_day": 300, "history_days": 60, "as_of": AS_OF, "client_id": "chiso",
         "client_secret": "s3cret"}
WEEK = {"updatedFrom": "2026-10-05T00:00:00+07:00", "updatedTo": "2026-10-12T00:00:00+07:00"}


@pytest.fixture(scope="module")
def s2() -> Iterator[str]:
    with serve_dossiers(**SCALE) as url:
        yield url


@pytest.fixture
def api(s2: str) -> Iterator[httpx.Client]:
    """A client with a fresh token, on a server with no fault, shift or clock change left over."""
    httpx.post(f"{s2}/_sandbox/reset").raise_for_status()
    httpx.post(f"{s2}/_sandbox/clock", json={"as_of": AS_OF}).raise_for_status()
    with httpx.Client(base_url=s2, timeout=10) as c:
        c.headers["Authorization"] = f"Bearer {token(c)}"
        yield c
    httpx.post(f"{s2}/_sandbox/reset").raise_for_status()


def token(c: httpx.Client, secret: str = "s3cret") -> str:
    r = c.post(TOKEN, data={**GRANT, "client_secret": secret})
    r.raise_for_status()
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    return body["access_token"]


def pages(c: httpx.Client, params: dict, size: int = 100, path: str = "/api/v1/dossiers") -> list[dict]:
    out, page = [], 0
    while True:
        body = c.get(path, params={**params, "page": page, "size": size}).json()
        out.extend(body["content"])
        page += 1
        if page >= body["totalPages"]:
            return out


def test_oauth_client_credentials(s2: str) -> None:
    with httpx.Client(base_url=s2) as c:
        assert c.get("/api/v1/units").status_code == 401
        bad = c.post(TOKEN, data={**GRANT, "client_secret": "x"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        assert c.post(TOKEN, data={"grant_type": "password"}).status_code == 400
        r = c.get("/api/v1/units", headers={"Authorization": f"Bearer {token(c)}"})
        assert r.status_code == 200 and r.json()["totalElements"] == 119
        assert c.get("/api/v1/units", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_tokens_expire() -> None:
    with serve_dossiers(**{**SCALE, "token_lifetime": 1}) as url, httpx.Client(base_url=url) as c:
        r = c.post(TOKEN, data={**GRANT, "client_secret": "s3cret"})
        assert r.json()["expires_in"] == 1
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert c.get("/api/v1/units", headers=headers).status_code == 200
        time.sleep(1.2)
        r = c.get("/api/v1/units", headers=headers)
        assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]


def test_expire_tokens_fault(s2: str, api: httpx.Client) -> None:
    httpx.post(f"{s2}/_sandbox/faults", json=[{"expire_tokens": True}]).raise_for_status()
    assert api.get("/api/v1/units").status_code == 401
    api.headers["Authorization"] = f"Bearer {token(api)}"
    assert api.get("/api/v1/units").status_code == 200


def test_paging_envelope_and_order(api: httpx.Client) -> None:
    first = api.get("/api/v1/dossiers", params={**WEEK, "page": 0, "size": 100}).json()
    assert set(first) == {"content", "number", "size", "totalElements", "totalPages"}
    total = first["totalElements"]
    assert first["number"] == 0 and first["size"] == 100 and first["totalPages"] == -(-total // 100)
    rows = pages(api, WEEK)
    keys = [(r["NgayCapNhat"], r["MaHoSo"]) for r in rows]
    assert len(rows) == total > 1000 and keys == sorted(keys) and len(set(keys)) == total
    assert all("20261005000000" <= r["NgayCapNhat"] < "20261012000000" for r in rows)
    beyond = api.get("/api/v1/dossiers", params={**WEEK, "page": first["totalPages"], "size": 100}).json()
    assert beyond["content"] == [] and beyond["totalElements"] == total
    for bad in ({"size": 0}, {"size": 1001}, {"page": -1}, {"updatedFrom": "yesterday"}):
        assert api.get("/api/v1/dossiers", params={**WEEK, **bad}).status_code == 400
    assert api.get("/api/v1/dossiers", params={"size": 10}).status_code == 400


def test_window_bounds_from_inclusive_to_exclusive(api: httpx.Client) -> None:
    row = api.get("/api/v1/dossiers", params={**WEEK, "size": 1, "page": 7}).json()["content"][0]
    t = row["NgayCapNhat"]
    at = f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:]}+07:00"
    got = pages(api, {"updatedFrom": at, "updatedTo": at.replace("+07:00", ".5+07:00")})
    assert row["MaHoSo"] in {r["MaHoSo"] for r in got}
    before = pages(api, {"updatedFrom": "2026-10-05T00:00:00+07:00", "updatedTo": at})
    assert row["MaHoSo"] not in {r["MaHoSo"] for r in before if r["NgayCapNhat"] == t}
    naive = pages(api, {"updatedFrom": at[:19], "updatedTo": at[:19] + ".9"})
    assert row["MaHoSo"] in {r["MaHoSo"] for r in naive}  # naive times are local


def test_catalogue_endpoints(api: httpx.Client) -> None:
    procs = pages(api, {}, size=1000, path="/api/v1/procedures")
    assert len(procs) == 2168 and sum(p["TichHopDVCQG"] for p in procs) == 1946
    units = api.get("/api/v1/units").json()["content"]
    assert {u["CapDonVi"] for u in units} == {"TINH", "SO_NGANH", "XA"}


def test_clock_moves_dossiers_on(s2: str, api: httpx.Client) -> None:
    before = {r["MaHoSo"]: r["NgayCapNhat"] for r in pages(api, WEEK, size=1000)}
    clock = httpx.post(f"{s2}/_sandbox/clock", json={"advance": 5 * 86400}).json()
    assert clock == {"as_of": "2026-10-20T12:00:00+07:00", "fixed": True}
    after = {r["MaHoSo"]: r["NgayCapNhat"] for r in pages(api, WEEK, size=1000)}
    assert set(after) < set(before)  # those that changed since left the window
    later = {"updatedFrom": WEEK["updatedTo"], "updatedTo": "2026-10-21T00:00:00+07:00"}
    newer = pages(api, later, size=1000)
    moved = {r["MaHoSo"]: r["NgayCapNhat"] for r in newer if r["MaHoSo"] in before}
    assert set(moved) == set(before) - set(after) and all(moved[k] > before[k] for k in moved)


def test_shift_fault_moves_a_record_and_adds_one(s2: str, api: httpx.Client) -> None:
    page0 = api.get("/api/v1/dossiers", params={**WEEK, "page": 0, "size": 500}).json()
    old1 = api.get("/api/v1/dossiers", params={**WEEK, "page": 1, "size": 500}).json()["content"]
    first = page0["content"][0]
    httpx.post(f"{s2}/_sandbox/faults", json=[{"shift": True}]).raise_for_status()
    page1 = api.get("/api/v1/dossiers", params={**WEEK, "page": 1, "size": 500}).json()
    assert page1["totalElements"] == page0["totalElements"] + 1
    # everything after the moved record shifted one place back: page 1 now starts with its old second
    # record, and a client paging by number alone would miss its old first one
    assert page1["content"][0] == old1[1] and old1[0] not in page0["content"] + page1["content"]
    stats = httpx.get(f"{s2}/_sandbox/stats").json()
    assert stats["moved"] == [first["MaHoSo"]] and len(stats["arrived"]) == 1
    rows = pages(api, WEEK, size=500)  # the change stays: a new read sees it
    by_id = {r["MaHoSo"]: r for r in rows}
    assert len(by_id) == len(rows) == page1["totalElements"]
    moved, arrived = by_id[first["MaHoSo"]], by_id[stats["arrived"][0]]
    assert first["NgayCapNhat"] < moved["NgayCapNhat"] < "20261012000000"
    assert {moved["MaHoSo"], arrived["MaHoSo"]} == {r["MaHoSo"] for r in rows[-2:]}
    assert arrived["NgayCapNhat"] == moved["NgayCapNhat"]


def test_duplicate_conflict_fault(s2: str, api: httpx.Client) -> None:
    httpx.post(f"{s2}/_sandbox/faults", json=[{"duplicate_conflict": True}]).raise_for_status()
    body = api.get("/api/v1/dossiers", params={**WEEK, "page": 2, "size": 100}).json()
    ids = [r["MaHoSo"] for r in body["content"]]
    assert len(ids) == 101 and len(set(ids)) == 100
    dup = [r for r in body["content"] if ids.count(r["MaHoSo"]) == 2]
    stale, current = dup
    assert stale["NgayCapNhat"] < current["NgayCapNhat"]
    assert stale["TrangThaiHoSo"] != current["TrangThaiHoSo"]
    clean = api.get("/api/v1/dossiers", params={**WEEK, "page": 2, "size": 100}).json()["content"]
    assert current in clean and stale not in clean


def test_shared_faults_and_envelope_error(s2: str, api: httpx.Client) -> None:
    httpx.post(f"{s2}/_sandbox/faults", json=[
        {"envelope_error": True}, {"status": 429, "retry_after": 1}, {"truncate": True}]).raise_for_status()
    r = api.get("/api/v1/dossiers", params=WEEK)
    assert r.status_code == 200 and "content" not in r.json() and r.json()["status"] == 500
    r = api.get("/api/v1/dossiers", params=WEEK)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    r = api.get("/api/v1/dossiers", params={**WEEK, "size": 5})
    with pytest.raises(ValueError):
        r.json()


def test_feedback_server() -> None:
    with serve_feedback(**SCALE) as url, httpx.Client(base_url=url) as c:
        assert c.get("/api/v1/feedback", params=WEEK).status_code == 401
        c.headers["Authorization"] = f"Bearer {token(c)}"
        month = {"updatedFrom": "2026-09-01T00:00:00+07:00", "updatedTo": "2026-10-01T00:00:00+07:00"}
        petitions = pages(c, month, path="/api/v1/feedback")
        ratings = pages(c, month, path="/api/v1/ratings")
        assert petitions and ratings
        assert set(petitions[0]) == {"MaPAKN", "MaDonVi", "MaHoSo", "PhanLoai", "NgayTiepNhan", "HanXuLy",
                                     "NgayXuLy", "TrangThai", "SoLuotThich", "SoLuotKhongThich",
                                     "TiepTucPhanAnh", "NgayCapNhat"}
        assert set(ratings[0]) == {"MaDanhGia", "MaHoSo", "MaDonVi", "MucDo", "NgayDanhGia", "NgayCapNhat"}
        for rows, key in ((petitions, "MaPAKN"), (ratings, "MaDanhGia")):
            keys = [(r["NgayCapNhat"], r[key]) for r in rows]
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
    with serve_dossiers(**SCALE) as s2, httpx.Client(base_url=s2) as c:  # ratings name real dossiers
        c.headers["Authorization"] = f"Bearer {token(c)}"
        rated = ratings[0]
        t = rated["NgayDanhGia"]
        ids = {r["MaHoSo"] for r in pages(c, {"updatedFrom": "2026-06-01", "updatedTo": f"{t[:4]}-{t[4:6]}-"
                                              f"{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:]}"}, size=1000)}
        assert rated["MaHoSo"] in ids


def test_centres_server_api_key_and_gaps() -> None:
    with serve_centres(api_key="k3y", as_of=AS_OF, history_days=60) as url, httpx.Client(base_url=url) as c:
        assert c.get("/api/v1/centres").status_code == 401
        assert c.get("/api/v1/centres", headers={"X-Api-Key": "wrong"}).status_code == 403
        c.headers["X-Api-Key"] = "k3y"
        centres = c.get("/api/v1/centres").json()["content"]
        assert len(centres) == 103
        window = {"from": "2026-10-05T00:00:00+07:00", "to": "2026-10-12T00:00:00+07:00"}
        snaps = pages(c, window, size=1000, path="/api/v1/centres/snapshots")
        assert all(s["ThoiDiem"].endswith("+07:00") for s in snaps)
        keys = [(s["ThoiDiem"], s["MaTrungTam"]) for s in snaps]
        assert keys == sorted(keys)
        assert 0.95 * 103 * 7 * 10 < len(snaps) < 103 * 7 * 10  # offline hours are missing
        assert c.get("/api/v1/centres/snapshots", params={"from": "x", "to": "y"}).status_code == 400


def test_command_line_serves_with_credentials_from_the_environment() -> None:
    env = {**os.environ, "CHISO_CENTRES_API_KEY": "from-env"}
    proc = subprocess.Popen([sys.executable, "-m", "ingestion.sandbox.provincial", "--source", "centres",
                             "--port", "0", "--host", "127.0.0.1"],
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        assert httpx.get(f"{url}/api/v1/centres", headers={"X-Api-Key": "from-env"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
