"""Row-level security in Superset: a role per commune and per agency of `marts.dim_unit`, whose members see
only their unit's rows, and one province role that sees every row.

`sync(client)` runs after every asset import (`ingestion.superset.import_bundle`) and only through the REST
API. A unit-level dataset is any dataset with a `unit_code` column, found anew on every run, so datasets
added later are covered by the next import. Each unit role carries:
- the viewer permissions (`VIEWER_PERMISSIONS`: dashboards, charts and their data; no SQL Lab, no editing)
  plus access to the warehouse database, so a user needs this one role and nothing else;
- exactly one Regular RLS filter named `FILTER_PREFIX + unit_code`, clause `unit_code = '<code>'`, on every
  unit-level dataset. The filter's name is how a later run finds the role again (a renamed unit renames its
  role); all filters share `GROUP_KEY`, so a user given two unit roles sees both units.
The province role (`PROVINCE_ROLE`) has the viewer permissions and no filter. A unit gone from dim_unit loses
its filter and its role (its users keep their login but see nothing until given another role). Re-running
changes nothing. Users without any of these roles (Admin, Alpha) are not filtered.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field

import httpx
import psycopg

from ingestion import pg

log = logging.getLogger(__name__)

UNIT_COLUMN = "unit_code"
FILTER_PREFIX = "chiso đơn vị "  # + unit code: the filters (and through them the roles) this module owns
GROUP_KEY = "unit_code"  # filters with one group key are ORed by Superset, different keys ANDed
PROVINCE_ROLE = "Cấp tỉnh – xem toàn tỉnh"
ROLE_NAME_MAX = 64  # ab_role.name is varchar(64)
UNIT_CODE = re.compile(r"^[A-Za-z0-9._-]+$")  # codes go into SQL: anything else is refused
USERNAME = re.compile(r"^[A-Za-z0-9._@-]+$")
DATABASE_NAME = "Kho dữ liệu chiso"  # superset/assets/databases/chiso_warehouse.yaml

# What a dashboard reader needs in Superset 6.1 (its Public-role set, superset/security/manager.py
# PUBLIC_ROLE_PERMISSIONS, plus what a logged-in user has: dashboard list, own profile and password).
# Checked in a browser: a unit user's dashboard page gets no 403.
VIEWER_PERMISSIONS = frozenset({
    ("can_read", "Dashboard"), ("can_read", "Chart"), ("can_dashboard", "Superset"),
    ("can_slice", "Superset"), ("can_explore_json", "Superset"), ("can_dashboard_permalink", "Superset"),
    ("can_read", "DashboardPermalinkRestApi"), ("can_write", "DashboardPermalinkRestApi"),
    ("can_read", "DashboardFilterStateRestApi"), ("can_write", "DashboardFilterStateRestApi"),
    ("can_time_range", "Api"), ("can_query_form_data", "Api"), ("can_query", "Api"),
    ("can_read", "CssTemplate"), ("can_read", "Theme"), ("can_read", "CurrentUserRestApi"),
    ("can_get", "Datasource"), ("can_external_metadata", "Datasource"),
    ("can_read", "Annotation"),
    ("can_read", "ExplorePermalinkRestApi"), ("menu_access", "Dashboards"), ("can_recent_activity", "Log"),
    ("can_userinfo", "UserDBModelView"), ("resetmypassword", "UserDBModelView"),
    ("can_language_pack", "Superset"), ("can_log", "Superset"),  # the front end asks for both on every page
})


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    unit_type: str  # agency | commune


@dataclass
class SyncResult:
    units: int = 0
    datasets: list[str] = field(default_factory=list)  # unit-level datasets (table_name)
    created: int = 0  # roles made (a new unit, or the province role the first time)
    updated: int = 0  # changes to existing roles or filters: name, permissions, clause, datasets
    deleted: int = 0  # units gone from dim_unit (their filter and role)
    skipped: str | None = None  # why nothing was done

    def __str__(self) -> str:
        if self.skipped:
            return f"row-level security not synced: {self.skipped}"
        return (f"row-level security: {self.units} unit roles over {len(self.datasets)} unit-level datasets; "
                f"{self.created} created, {self.updated} updated, {self.deleted} deleted")


class RlsError(RuntimeError):
    pass


def role_name(unit: Unit) -> str:
    """Readable and unique: the unit's Vietnamese name and its code, cut to fit ab_role.name."""
    suffix = f" ({unit.code})"
    name = unit.name.strip()
    if len(name) + len(suffix) > ROLE_NAME_MAX:
        name = name[: ROLE_NAME_MAX - len(suffix) - 1].rstrip() + "…"
    return name + suffix


def clause(code: str) -> str:
    if not UNIT_CODE.match(code):
        raise RlsError(f"unit code {code!r} is not a plain code; refusing to put it in an RLS clause")
    return f"{UNIT_COLUMN} = '{code}'"


def load_units() -> list[Unit] | None:
    """The province's agencies and communes from marts.dim_unit (None when the table does not exist yet)."""
    try:
        with pg.connect("reader") as conn:
            rows = conn.execute("select unit_code, unit_name, unit_type from marts.dim_unit"
                                " where unit_type in ('agency', 'commune') order by unit_code").fetchall()
    except psycopg.errors.UndefinedTable:
        return None
    return [Unit(code, name or code, unit_type) for code, name, unit_type in rows]


# --- reading Superset ----------------------------------------------------------------------------------


def _check(response: httpx.Response, what: str) -> dict:
    if response.status_code >= 400:
        raise RlsError(f"{what} failed ({response.status_code}): {response.text[:500]}")
    return response.json() if response.content else {}


def _paged(client: httpx.Client, path: str, query: str = "") -> list[dict]:
    """Every row of a Superset/FAB list endpoint (pages of 100, the API's largest)."""
    rows, page = [], 0
    while True:
        body = _check(client.get(path, params={"q": f"({query}page:{page},page_size:100)"}), f"GET {path}")
        rows += body["result"]
        if len(body["result"]) < 100 or len(rows) >= body.get("count", 0):
            return rows
        page += 1


def unit_level_datasets(client: httpx.Client) -> dict[int, str]:
    """Dataset id -> table_name of every dataset that has a unit_code column."""
    found = {}
    for row in _paged(client, "/api/v1/dataset/", "columns:!(id,table_name),"):
        dataset = _check(client.get(f"/api/v1/dataset/{row['id']}"), "GET dataset")["result"]
        if any(c["column_name"] == UNIT_COLUMN for c in dataset["columns"]):
            found[row["id"]] = row["table_name"]
    return found


def viewer_permission_ids(client: httpx.Client) -> list[int]:
    """Ids of VIEWER_PERMISSIONS and of access to the warehouse database (its datasets, now and later)."""
    databases = _paged(client, "/api/v1/database/", "columns:!(id,database_name),")
    warehouse = [d["id"] for d in databases if d["database_name"] == DATABASE_NAME]
    if not warehouse:
        raise RlsError(f"no database named {DATABASE_NAME!r}; import the assets first")
    database = ("database_access", f"[{DATABASE_NAME}].(id:{warehouse[0]})")
    wanted = set(VIEWER_PERMISSIONS) | {database}
    # Superset registers some REST APIs' permissions while its workers start, after the server answers
    # health checks: wait for them a little, then grant what exists (the next import grants the rest).
    for _attempt in range(10):
        ids = {}
        for row in _paged(client, "/api/v1/security/permissions-resources/"):
            pair = (row["permission"]["name"], row["view_menu"]["name"])
            if pair in wanted:
                ids[pair] = row["id"]
        if wanted <= ids.keys():
            break
        time.sleep(3)
    if database not in ids:
        raise RlsError(f"Superset lacks the permission {database} (run `superset init`?)")
    missing = wanted - ids.keys()
    if missing:
        log.warning("Superset does not define %s yet; granted the other viewer permissions", sorted(missing))
    return sorted(ids.values())


def list_roles(client: httpx.Client) -> dict[str, dict]:
    """Role name -> {id, permission_ids, user_ids} (Superset's /roles/search/ lists them with permissions)."""
    roles, page = {}, 0
    while True:
        body = _check(client.get("/api/v1/security/roles/search/",
                                 params={"q": f"(page:{page},page_size:500)"}), "GET roles")
        roles.update({r["name"]: r for r in body["result"]})
        if len(roles) >= body["count"] or not body["result"]:
            return roles
        page += 1


def unit_filters(client: httpx.Client) -> dict[str, dict]:
    """Unit code -> the RLS filter this module made for it."""
    rows = _paged(client, "/api/v1/rowlevelsecurity/", "filters:!((col:name,opr:sw,value:'"
                  + FILTER_PREFIX.replace("'", "!'") + "')),")
    return {r["name"][len(FILTER_PREFIX):]: r for r in rows if r["name"].startswith(FILTER_PREFIX)}


# --- writing ---------------------------------------------------------------------------------------------


def _ensure_role(client: httpx.Client, roles: dict[str, dict], name: str, role_id: int | None,
                 permission_ids: list[int], result: SyncResult) -> int:
    """The role `name` (renaming role_id if given) with exactly permission_ids; returns its id."""
    by_id = {r["id"]: r for r in roles.values()}
    role = by_id.get(role_id) or roles.get(name)
    new = role is None
    if new:
        created = _check(client.post("/api/v1/security/roles/", json={"name": name}), f"create role {name}")
        role = {"id": created["id"], "name": name, "permission_ids": []}
        roles[name] = role
        result.created += 1
    elif role["name"] != name:
        _check(client.put(f"/api/v1/security/roles/{role['id']}", json={"name": name}), f"rename role {name}")
        roles[name] = roles.pop(role["name"])
        role["name"] = name
        result.updated += 1
    if sorted(role["permission_ids"]) != permission_ids:
        _check(client.post(f"/api/v1/security/roles/{role['id']}/permissions",
                           json={"permission_view_menu_ids": permission_ids}), f"permissions of {name}")
        result.updated += not new  # a new role's first permissions are part of its creation
        role["permission_ids"] = permission_ids
    return role["id"]


def _filter_body(unit: Unit, role_id: int, table_ids: list[int]) -> dict:
    return {"name": FILTER_PREFIX + unit.code, "filter_type": "Regular", "group_key": GROUP_KEY,
            "clause": clause(unit.code), "roles": [role_id], "tables": table_ids,
            "description": f"Người dùng của đơn vị {unit.code} chỉ thấy các dòng của đơn vị mình."}


def _same_filter(existing: dict, body: dict) -> bool:
    return (existing["clause"] == body["clause"] and existing["filter_type"] == body["filter_type"]
            and existing.get("group_key") == body["group_key"]
            and sorted(r["id"] for r in existing["roles"]) == body["roles"]
            and sorted(t["id"] for t in existing["tables"]) == body["tables"])


def sync(client: httpx.Client, units: list[Unit] | None = None) -> SyncResult:
    """Bring the unit roles, their RLS filters and the province role in line with dim_unit (see module doc).
    `client` is logged in as the admin (ingestion.superset.api_client)."""
    units = load_units() if units is None else units
    result = SyncResult()
    if not units:  # no dim_unit yet (national pipeline only), or an empty one: keep what exists
        result.skipped = "marts.dim_unit is missing or has no agency or commune"
        return result
    datasets = unit_level_datasets(client)
    if not datasets:
        result.skipped = f"no dataset has a {UNIT_COLUMN} column"
        return result
    table_ids = sorted(datasets)
    permission_ids = viewer_permission_ids(client)
    roles = list_roles(client)
    filters = unit_filters(client)
    result.units, result.datasets = len(units), sorted(datasets.values())

    _ensure_role(client, roles, PROVINCE_ROLE, None, permission_ids, result)
    for unit in units:
        existing = filters.pop(unit.code, None)
        owned = [r["id"] for r in existing["roles"]] if existing else []
        role_id = _ensure_role(client, roles, role_name(unit), owned[0] if owned else None, permission_ids,
                               result)
        body = _filter_body(unit, role_id, table_ids)
        if existing is None:
            _check(client.post("/api/v1/rowlevelsecurity/", json=body), f"create filter {body['name']}")
        elif not _same_filter(existing, body):
            _check(client.put(f"/api/v1/rowlevelsecurity/{existing['id']}", json=body),
                   f"update filter {body['name']}")
            result.updated += 1
    for stale in filters.values():  # units gone from dim_unit: the filter, then its role
        _check(client.delete(f"/api/v1/rowlevelsecurity/{stale['id']}"), f"delete filter {stale['name']}")
        for role in stale["roles"]:
            _check(client.delete(f"/api/v1/security/roles/{role['id']}"), f"delete role {role['name']}")
        result.deleted += 1
    log.info("%s", result)
    return result


# --- users -----------------------------------------------------------------------------------------------


def unit_role_id(client: httpx.Client, unit_code: str | None) -> tuple[int, str]:
    """(id, name) of the role of a unit code, or of the province role when unit_code is None."""
    if unit_code is None:
        role = list_roles(client).get(PROVINCE_ROLE)
        if role is None:
            raise RlsError(f"role {PROVINCE_ROLE!r} does not exist yet; run `chiso superset up` first")
        return role["id"], role["name"]
    found = unit_filters(client).get(unit_code)
    if found is None or not found["roles"]:
        raise RlsError(f"no role for unit {unit_code!r}; is it in marts.dim_unit (agency or commune)?")
    return found["roles"][0]["id"], found["roles"][0]["name"]


def add_user(client: httpx.Client, username: str, unit_code: str | None, *, first_name: str, last_name: str,
             email: str | None = None, password: str | None = None) -> tuple[str, str | None]:
    """Create a Superset login with one role: the unit's (unit_code) or the province's (None). An existing
    username gets that role instead of its roles (and the password, if given). Returns (role name, password
    generated for a new user or None)."""
    if not USERNAME.match(username):
        raise RlsError(f"username {username!r}: use letters, digits and . _ @ - only")
    role_id, role = unit_role_id(client, unit_code)
    users = _paged(client, "/api/v1/security/users/",
                   f"columns:!(id,username),filters:!((col:username,opr:eq,value:'{username}')),")
    if users:
        body = {"roles": [role_id], **({"password": password} if password else {})}
        _check(client.put(f"/api/v1/security/users/{users[0]['id']}", json=body), f"update user {username}")
        return role, None
    generated = None if password else secrets.token_urlsafe(12)
    body = {"username": username, "first_name": first_name, "last_name": last_name, "active": True,
            "email": email or f"{username}@chiso.invalid", "password": password or generated,
            "roles": [role_id]}
    _check(client.post("/api/v1/security/users/", json=body), f"create user {username}")
    return role, generated
