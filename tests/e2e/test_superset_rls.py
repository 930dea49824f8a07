"""Row-level security end to end, over the marts of a whole night: a role per commune and agency of
marts.dim_unit; a commune login (made with `chiso superset user add`) gets only its commune's rows from every
unit-level dataset, through the API and on the dashboard in a real browser, including the commune map (by its
commune code) and its own headline; a province login gets every row, and the province's headline; re-importing
changes nothing; a unit gone from dim_unit loses its filter and role."""

from __future__ import annotations

import secrets

import pytest
from superset_browser import (
    assert_every_chart_has_data,
    dashboard_slugs,
    render_dashboard,
    render_dashboard_probed,
)

from ingestion import cli, pg, superset, superset_rls
from ingestion.config import settings

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SLUG = "chi-so-766-toan-quoc"
UNIT_TABLE = "Xếp hạng sở, ngành và xã, phường của Đắk Lắk"  # a table chart over unit_scores_selected_period
PASSWORD = f"Pt-{secrets.token_urlsafe(12)}9a"  # of the four kinds Superset's password policy counts
COMMUNE_USER, PROVINCE_USER = "pytest-xa", "pytest-tinh"


@pytest.fixture(scope="module")
def rls(warehouse_pipeline, superset_url) -> dict:
    """Roles synced over the whole night's marts (Superset may have started before dim_unit existed), and
    two logins made with the CLI: a commune's with official scores in the latest month, the province's."""
    superset.import_bundle()
    with pg.connect("reader") as conn:
        code, name, shown, statistics_code = conn.execute(  # name: dim_unit's (the role's); shown: DVCQG's
            "select s.unit_code, d.unit_name, s.unit_name, d.statistics_code"
            " from marts.mart_unit_official_scores s"
            " join marts.dim_unit d using (unit_code)"
            " where s.unit_type = 'commune' and s.period_type = 'month' and s.period_start ="
            " (select max(period_start) from marts.mart_unit_official_scores where period_type = 'month')"
            " order by s.unit_code limit 1").fetchone()
        units = dict(conn.execute(
            "select unit_type, count(*) from marts.dim_unit group by unit_type").fetchall())
    for username, scope in ((COMMUNE_USER, ["--unit", code]), (PROVINCE_USER, ["--province"])):
        argv = ["superset", "user", "add", username, *scope, "--first-name", "Kiểm", "--last-name", "thử",
                "--password", PASSWORD]
        assert cli.main(argv) == 0
    return {"code": code, "name": name, "shown": shown, "statistics_code": statistics_code, "units": units}


def _admin():
    return superset.api_client()


def _unit_datasets(client) -> dict[int, str]:
    """Every dataset with a unit_code column, looked up here independently of the module under test."""
    found = {}
    listing = client.get("/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["result"]
    for row in listing:
        columns = client.get(f"/api/v1/dataset/{row['id']}").json()["result"]["columns"]
        if "unit_code" in {c["column_name"] for c in columns}:
            found[row["id"]] = row["table_name"]
    return found


def _rows(client, dataset_id: int, columns: list[str]) -> list[dict]:
    """The rows a login gets from a dataset through /api/v1/chart/data, grouped by columns and counted."""
    payload = {"datasource": {"id": dataset_id, "type": "table"}, "force": True, "result_format": "json",
               "result_type": "full", "queries": [{
                   "columns": columns, "orderby": [], "row_limit": 100000,
                   "metrics": [{"expressionType": "SQL", "sqlExpression": "count(*)", "label": "dong"}]}]}
    response = client.post("/api/v1/chart/data", json=payload)
    assert response.status_code == 200, response.text[:500]
    return response.json()["result"][0]["data"]


def _unit_codes(client, dataset_id: int, column: str = "unit_code") -> set[str]:
    """The unit codes (values of `column`) a login gets from a dataset."""
    return {row[column] for row in _rows(client, dataset_id, [column])}


def _state(client) -> tuple:
    """What the sync owns: every role (name, permissions, users) and every RLS filter, comparable."""
    roles = superset_rls.list_roles(client).values()
    filters = client.get("/api/v1/rowlevelsecurity/", params={"q": "(page_size:100,page:0)"}).json()
    rows = filters["result"]
    for page in range(1, (filters["count"] + 99) // 100):
        rows += client.get("/api/v1/rowlevelsecurity/",
                           params={"q": f"(page_size:100,page:{page})"}).json()["result"]
    return (sorted((r["id"], r["name"], sorted(r["permission_ids"]), sorted(r["user_ids"])) for r in roles),
            sorted((f["id"], f["name"], f["clause"], f["group_key"], sorted(r["id"] for r in f["roles"]),
                    sorted(t["id"] for t in f["tables"])) for f in rows))


def test_a_role_and_filter_per_unit(rls) -> None:
    client = _admin()
    try:
        datasets = _unit_datasets(client)
        filters = superset_rls.unit_filters(client)
        province = superset_rls.list_roles(client)[superset_rls.PROVINCE_ROLE]["id"]
        permissions = client.get(f"/api/v1/security/roles/{province}/permissions/").json()["result"]
    finally:
        client.close()
    assert rls["units"]["commune"] == 102
    assert len(filters) == rls["units"]["commune"] + rls["units"]["agency"]
    assert {"mart_unit_official_scores", "unit_scores_selected_period"} <= set(datasets.values())
    commune = filters[rls["code"]]
    assert commune["clause"] == f"unit_code = '{rls['code']}'"
    assert [r["name"] for r in commune["roles"]] == [f"{rls['name']} ({rls['code']})"]
    for code, rule in filters.items():
        assert {t["id"] for t in rule["tables"]} == set(datasets), code
        assert len(rule["roles"]) == 1 and rule["roles"][0]["name"].endswith(f"({code})")
    # a viewer, not an editor: no SQL Lab, no writing dashboards, charts or datasets
    names = {(p["permission_name"], p["view_menu_name"]) for p in permissions}
    assert ("can_read", "Dashboard") in names and ("can_sqllab", "Superset") not in names
    assert not {(p, v) for p, v in names if p == "can_write" and v in ("Dashboard", "Chart", "Dataset")}


def test_api_commune_gets_its_rows_province_all(rls) -> None:
    admin = _admin()
    commune = superset.api_client((COMMUNE_USER, PASSWORD))
    province = superset.api_client((PROVINCE_USER, PASSWORD))
    try:
        datasets = _unit_datasets(admin)
        for dataset_id, table in datasets.items():
            everything = _unit_codes(admin, dataset_id)
            assert _unit_codes(province, dataset_id) == everything, table
            assert _unit_codes(commune, dataset_id) <= {rls["code"]}, table
        official = next(i for i, t in datasets.items() if t == "mart_unit_official_scores")
        assert _unit_codes(commune, official) == {rls["code"]}
        with pg.connect("reader") as conn:
            in_warehouse = {r[0] for r in conn.execute(
                "select distinct unit_code from marts.mart_unit_official_scores")}
        assert _unit_codes(province, official) == in_warehouse and len(in_warehouse) > 100
        # no way around the filter: no SQL Lab, no security API, no dataset editing
        for path in ("/api/v1/sqllab/", "/api/v1/rowlevelsecurity/", "/api/v1/security/roles/"):
            assert commune.get(path).status_code == 403, path
        assert admin.get("/api/v1/sqllab/").status_code == 200
    finally:
        for client in (admin, commune, province):
            client.close()


def test_commune_map_and_headline_are_the_communes_own(rls) -> None:
    """The map is filtered on its own column (commune_code, the unit's statistics code); the headline holds
    every unit's figures: a commune user gets its own, the province user and the admin the province's."""
    admin = _admin()
    commune = superset.api_client((COMMUNE_USER, PASSWORD))
    province = superset.api_client((PROVINCE_USER, PASSWORD))
    try:
        ids = {table: i for i, table in
               ((r["id"], r["table_name"]) for r in admin.get(
                   "/api/v1/dataset/", params={"q": "(page_size:100)"}).json()["result"])}
        map_id, headline_id = ids["daily_commune_map_today"], ids["daily_headline_today"]
        owned = superset_rls.owned_filters(admin)
        base = superset_rls.base_filters(admin)["daily_headline_today"]
        unit_roles = sorted(r["id"] for f in superset_rls.unit_filters(admin).values() for r in f["roles"])

        assert _unit_codes(commune, map_id, "commune_code") == {rls["statistics_code"]}
        assert len(_unit_codes(province, map_id, "commune_code")) == 102
        assert _unit_codes(admin, map_id, "commune_code") == _unit_codes(province, map_id, "commune_code")

        headline = {user: _rows(client, headline_id, ["unit_code", "unit_type", "chi_so", "gia_tri_vi"])
                    for user, client in (("commune", commune), ("province", province), ("admin", admin))}
    finally:
        for client in (admin, commune, province):
            client.close()
    commune_map = owned[rls["code"], "commune_code"]
    assert commune_map["clause"] == f"commune_code = '{rls['statistics_code']}'"
    assert [t["id"] for t in commune_map["tables"]] == [map_id]
    agency = next(code for code, column in owned if column == "unit_code" and (code, "commune_code") in owned
                  and owned[code, "commune_code"]["clause"] == superset_rls.NO_ROWS)
    assert agency  # an agency is on no map: it sees none of its rows
    assert base["filter_type"] == "Base" and base["clause"] == "unit_type = 'province'"
    assert sorted(r["id"] for r in base["roles"]) == unit_roles  # everyone but the unit roles: province rows

    with pg.connect("reader") as conn:
        own = dict(conn.execute("select unit_code, open_overdue from marts.mart_unit_daily_headline"
                                " where is_as_of_date and unit_code = %s", (rls["code"],)).fetchall())
    assert {r["unit_code"] for r in headline["commune"]} == {rls["code"]} and len(headline["commune"]) == 5
    assert {(r["unit_code"], r["unit_type"]) for r in headline["province"]} == {
        (settings().province_dvcqg_code, "province")}
    assert len(headline["province"]) == 5 and headline["admin"] == headline["province"]
    overdue = next(r["gia_tri_vi"] for r in headline["commune"] if r["chi_so"] == "open_overdue")
    assert overdue == f"{own[rls['code']]:,}".replace(",", ".")


def test_dashboard_shows_the_commune_only(rls, superset_url: str) -> None:
    with pg.connect("reader") as conn:
        others = [r[0] for r in conn.execute(
            "select distinct unit_name from marts.mart_unit_official_scores where unit_code <> %s",
            (rls["code"],))]
    charts, text = render_dashboard(superset_url, SLUG, "superset_rls_xa.png", (COMMUNE_USER, PASSWORD))
    assert_every_chart_has_data(charts)
    table = next(c for c in charts if c["title"].startswith(UNIT_TABLE))
    assert table["rows"] == 1, table
    assert rls["shown"] in text
    assert not [name for name in others if name in text]

    charts, text = render_dashboard(superset_url, SLUG, "superset_rls_tinh.png", (PROVINCE_USER, PASSWORD))
    assert_every_chart_has_data(charts)
    assert next(c for c in charts if c["title"].startswith(UNIT_TABLE))["rows"] > 1
    assert [name for name in others if name in text]


def test_reimport_changes_nothing(rls) -> None:
    client = _admin()
    try:
        before = _state(client)
        results = [superset.import_bundle() for _ in range(2)]
        after = _state(client)
    finally:
        client.close()
    assert after == before
    assert all((r.created, r.updated, r.deleted) == (0, 0, 0) and not r.skipped for r in results), results


def test_gone_unit_loses_filter_and_role_renamed_unit_keeps_role(rls) -> None:
    client = _admin()
    try:
        datasets = _unit_datasets(client)
        roles_before = {r["id"]: r for r in superset_rls.list_roles(client).values()}
        gone = client.post("/api/v1/security/roles/", json={"name": "Xã Đã Sáp Nhập (H15.9999)"}).json()["id"]
        client.post("/api/v1/rowlevelsecurity/", json={
            "name": superset_rls.FILTER_PREFIX + "H15.9999", "filter_type": "Regular",
            "group_key": "unit_code", "clause": "unit_code = 'H15.9999'", "roles": [gone],
            "tables": sorted(datasets)}).raise_for_status()
        commune_role = superset_rls.unit_filters(client)[rls["code"]]["roles"][0]
        client.put(f"/api/v1/security/roles/{commune_role['id']}", json={"name": "Tên cũ"}).raise_for_status()
        client.post(f"/api/v1/security/roles/{commune_role['id']}/permissions",  # and lost its permissions
                    json={"permission_view_menu_ids": []}).raise_for_status()

        result = superset.import_bundle()

        filters = superset_rls.unit_filters(client)
        roles = {r["id"]: r for r in superset_rls.list_roles(client).values()}
    finally:
        client.close()
    assert (result.created, result.updated, result.deleted) == (0, 2, 1)
    assert "H15.9999" not in filters and gone not in roles
    restored = roles[commune_role["id"]]  # the same role: its users kept
    assert restored["name"] == commune_role["name"] and len(restored["user_ids"]) == 1
    assert sorted(restored["permission_ids"]) == sorted(roles_before[commune_role["id"]]["permission_ids"])


def test_a_weak_password_is_refused(rls) -> None:
    assert cli.main(["superset", "user", "add", "pytest-yeu", "--unit", rls["code"], "--first-name", "A",
                     "--last-name", "B", "--password", "a"]) == 1
    client = _admin()
    try:
        with pytest.raises(superset_rls.RlsError, match="12"):
            superset_rls.add_user(client, "pytest-yeu", rls["code"], first_name="A", last_name="B",
                                  password="abcdefghijkl")  # long enough, one kind only
    finally:
        client.close()


def test_repeated_wrong_logins_are_rate_limited_per_account(rls, superset_url: str) -> None:
    """The API login (FAB limits only the form's) answers 429 once an account has had its tries; another
    account from the same address still logs in."""
    import httpx

    admin = _admin()
    try:
        superset_rls.add_user(admin, "pytest-khoa", rls["code"], first_name="A", last_name="B",
                              password=PASSWORD)
    finally:
        admin.close()
    statuses = []
    with httpx.Client(base_url=superset_url, timeout=30) as client:
        for _ in range(70):  # the tests' limit is 30 a minute, counted in each of the 2 workers
            statuses.append(client.post("/api/v1/security/login", json={
                "username": "pytest-khoa", "password": "sai-mat-khau", "provider": "db"}).status_code)
            if statuses[-1] == 429:
                break
        assert statuses[-1] == 429 and set(statuses[:-1]) <= {401, 429}, statuses
        other = client.post("/api/v1/security/login", json={"username": PROVINCE_USER, "password": PASSWORD,
                                                               "provider": "db"})
        assert other.status_code == 200


def test_every_dashboard_opens_for_a_commune_user_without_an_error(rls, superset_url: str) -> None:
    """No 4xx or 5xx for a unit user on any dashboard (filter state, colours, permalinks, the user, the
    Vietnamese language pack), and Superset's menus in Vietnamese."""
    for slug in dashboard_slugs():
        charts, text, probed = render_dashboard_probed(superset_url, slug, f"superset_rls_xa_{slug}.png", {},
                                                    (COMMUNE_USER, PASSWORD))
        assert not probed["http_errors"], (slug, probed["http_errors"])
        assert not [c for c in charts if c["errors"]], slug
        assert "Bảng điều khiển" in text, slug  # the navbar's "Dashboards"
