"""Row-level security in Superset: a role per commune and per agency of `marts.dim_unit`, whose members see
only their unit's rows, and one province role that sees every row.

What each dataset shows to whom is declared, not guessed: superset/security.yaml (`SECURITY_FILE`) gives every
dataset of the bundle either a unit column (and the dim_unit column holding each unit's value for it, default
unit_code), or "province-wide" with the reason. `check_bundle` refuses a bundle with a dataset that has no
declaration or declares a column it lacks (ingestion.superset runs it before importing anything); `sync`
checks the declarations again against the datasets Superset holds.

`sync(client)` runs after every asset import (`ingestion.superset.import_bundle`) and only through the REST
API. Each unit role carries:
- the viewer permissions (`VIEWER_PERMISSIONS`: dashboards, charts and their data; no SQL Lab, no editing)
  plus access to the warehouse database, so a user needs this one role and nothing else;
- one Regular RLS filter per unit column in use: `FILTER_PREFIX + unit_code` for the datasets whose unit
  column is unit_code (clause `unit_code = '<code>'`), `FILTER_PREFIX + unit_code + COLUMN_SEPARATOR +
  column` for the others (the commune map: `commune_code = '<the unit's statistics code>'`; a unit without a
  value there, an agency, gets a clause no row meets). The main filter's name is how a later run finds the
  role again (a renamed unit renames its role); all filters share `GROUP_KEY`, so a user given two unit roles
  sees both units.
A unit-level dataset that also holds the province's rows (`province_rows`, the headline) gets one Base filter
(`BASE_PREFIX + table_name`): everyone except the unit roles (the province role, admins) sees only the
province's rows there. The province role (`PROVINCE_ROLE`) has the viewer permissions and no filter of its
own. A unit gone from dim_unit loses its filters and its role (its users keep their login but see nothing
until given another role). Re-running changes nothing. Users without any of these roles (Admin, Alpha) are
not filtered, except by the Base filters.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from ingestion import pg
from ingestion.config import PROJECT_ROOT

log = logging.getLogger(__name__)

SECURITY_FILE = PROJECT_ROOT / "superset" / "security.yaml"  # every dataset's declaration (module doc)
BUNDLE_DATASETS = PROJECT_ROOT / "superset" / "assets" / "datasets"
UNIT_COLUMN = "unit_code"
FILTER_PREFIX = "chiso đơn vị "  # + unit code: the filters (and through them the roles) this module owns
COLUMN_SEPARATOR = " · "  # FILTER_PREFIX + code + this + column: a unit's filter on another unit column
BASE_PREFIX = "chiso toàn tỉnh "  # + table name: the Base filters (province rows) this module owns
GROUP_KEY = "unit_code"  # filters with one group key are ORed by Superset, different keys ANDed
BASE_GROUP_KEY = "province_rows"
NO_ROWS = "1 = 0"  # the clause of a unit that has no value in a dataset's unit column
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")  # column names go into SQL too
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
    # the unit's values in other dim_unit columns (load_units' keys), e.g. statistics_code
    keys: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)

    def value(self, key: str) -> str | None:
        """The unit's value in dim_unit column `key` (unit_code: its code)."""
        return self.code if key == UNIT_COLUMN else self.keys.get(key)


@dataclass(frozen=True)
class Declaration:
    """One dataset's entry in SECURITY_FILE."""
    table: str
    unit_column: str | None = None  # unit-level: the dataset's column holding the unit's value
    unit_key: str = UNIT_COLUMN  # the dim_unit column with each unit's value for unit_column
    province_rows: tuple[tuple[str, str], ...] = ()  # (column, value): what non-unit users see (Base filter)
    province_wide: str | None = None  # visible to all: the reason

    @property
    def columns(self) -> set[str]:
        """The dataset columns the declaration relies on."""
        return {c for c in (self.unit_column, *(c for c, _ in self.province_rows)) if c}


@dataclass
class SyncResult:
    units: int = 0
    datasets: list[str] = field(default_factory=list)  # unit-level datasets (table_name)
    province_wide: list[str] = field(default_factory=list)  # datasets declared visible to all
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


def clause(value: str | None, column: str = UNIT_COLUMN) -> str:
    """`column = 'value'`; a unit without a value for the column (None) sees no row (NO_ROWS)."""
    if not IDENTIFIER.match(column):
        raise RlsError(f"column {column!r} is not a plain name; refusing to put it in an RLS clause")
    if value is None:
        return NO_ROWS
    if not UNIT_CODE.match(value):
        raise RlsError(f"unit code {value!r} is not a plain code; refusing to put it in an RLS clause")
    return f"{column} = '{value}'"


# --- declarations ---------------------------------------------------------------------------------------


def _declaration(table: str, entry: object) -> Declaration:
    where = f"{SECURITY_FILE.name}: dataset {table!r}"
    if not isinstance(entry, dict):
        raise RlsError(f"{where}: give unit_column or province_wide")
    unknown = set(entry) - {"unit_column", "unit_key", "province_rows", "province_wide"}
    if unknown:
        raise RlsError(f"{where}: unknown keys {sorted(unknown)}")
    column, reason = entry.get("unit_column"), entry.get("province_wide")
    if (column is None) == (reason is None):
        raise RlsError(f"{where}: give exactly one of unit_column (its unit column) or province_wide "
                       "(the reason)")
    if reason is not None:
        if not isinstance(reason, str) or not reason.strip():
            raise RlsError(f"{where}: province_wide needs the reason why every unit may see all of it")
        if set(entry) != {"province_wide"}:
            raise RlsError(f"{where}: a province-wide dataset has no unit_key or province_rows")
        return Declaration(table, province_wide=reason.strip())
    key = entry.get("unit_key", UNIT_COLUMN)
    rows = entry.get("province_rows") or {}
    if not isinstance(rows, dict):
        raise RlsError(f"{where}: province_rows is a mapping column: value")
    for name in (column, key, *rows):
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise RlsError(f"{where}: {name!r} is not a plain column name")
    for value in rows.values():
        if not isinstance(value, str) or not UNIT_CODE.match(value):
            raise RlsError(f"{where}: province_rows value {value!r} is not a plain code")
    return Declaration(table, unit_column=column, unit_key=key, province_rows=tuple(sorted(rows.items())))


def load_declarations(path: Path = SECURITY_FILE) -> dict[str, Declaration]:
    """Table name -> its declaration, from SECURITY_FILE (RlsError, one line, when it is malformed)."""
    import yaml  # PyYAML comes with dbt

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RlsError(f"cannot read the row-level security declarations {path}: {error}") from None
    entries = document.get("datasets") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise RlsError(f"{path.name}: expected a mapping `datasets:` of table name -> declaration")
    declarations = {table: _declaration(table, entry) for table, entry in entries.items()}
    meanings: dict[str, str] = {}  # one unit column, one dim_unit key: the filters are per column
    for d in declarations.values():
        if d.unit_column and meanings.setdefault(d.unit_column, d.unit_key) != d.unit_key:
            raise RlsError(f"{path.name}: unit column {d.unit_column!r} is matched to dim_unit."
                           f"{meanings[d.unit_column]} and to dim_unit.{d.unit_key}; use one")
    return declarations


def check_bundle(datasets: dict[str, set[str]], declarations: dict[str, Declaration] | None = None) -> None:
    """Refuse (RlsError, one line) a bundle in which a dataset (table name -> its columns) has no declaration,
    or a declaration names a column its dataset lacks, or a declared dataset is not in the bundle."""
    declarations = load_declarations() if declarations is None else declarations
    undeclared = sorted(set(datasets) - set(declarations))
    if undeclared:
        raise RlsError(f"{SECURITY_FILE.name}: no row-level security declared for dataset(s) "
                       f"{', '.join(undeclared)}: give each unit_column or province_wide with the reason")
    for table, declaration in sorted(declarations.items()):
        if table not in datasets:
            raise RlsError(f"{SECURITY_FILE.name}: declares dataset {table!r}, which the bundle lacks")
        missing = sorted(declaration.columns - datasets[table])
        if missing:
            raise RlsError(f"{SECURITY_FILE.name}: dataset {table!r} declares column(s) {', '.join(missing)}"
                           " that it does not have")


def bundle_tables() -> set[str]:
    """The table names of the bundle's datasets (superset/assets/datasets)."""
    import yaml

    return {yaml.safe_load(p.read_text(encoding="utf-8"))["table_name"]
            for p in BUNDLE_DATASETS.rglob("*.yaml")}


def load_units(keys: tuple[str, ...] = ()) -> list[Unit] | None:
    """The province's agencies and communes from marts.dim_unit, with their values in the dim_unit columns
    `keys` (None when the table does not exist yet)."""
    query = sql.SQL("select unit_code, unit_name, unit_type{} from marts.dim_unit"
                    " where unit_type in ('agency', 'commune') order by unit_code").format(
        sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(k)) for k in keys))
    try:
        with pg.connect("reader") as conn:
            rows = conn.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.errors.UndefinedColumn as error:
        raise RlsError(f"{SECURITY_FILE.name}: a unit_key is not a column of marts.dim_unit "
                       f"({str(error).splitlines()[0]})") from None
    return [Unit(code, name or code, unit_type, dict(zip(keys, rest, strict=True)))
            for code, name, unit_type, *rest in rows]


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


def superset_datasets(client: httpx.Client) -> dict[int, tuple[str, set[str]]]:
    """Dataset id -> (table_name, its column names) of every dataset Superset holds."""
    found = {}
    for row in _paged(client, "/api/v1/dataset/", "columns:!(id,table_name),"):
        dataset = _check(client.get(f"/api/v1/dataset/{row['id']}"), "GET dataset")["result"]
        found[row["id"]] = (row["table_name"], {c["column_name"] for c in dataset["columns"]})
    return found


@dataclass
class Plan:
    """What the declarations ask of the datasets Superset holds."""
    unit_level: dict[int, Declaration] = field(default_factory=dict)  # dataset id -> declaration
    province_wide: list[str] = field(default_factory=list)

    def columns(self) -> dict[tuple[str, str], list[int]]:
        """(unit column, dim_unit key) -> the ids of the datasets filtered on it."""
        found: dict[tuple[str, str], list[int]] = {}
        for dataset_id, d in sorted(self.unit_level.items()):
            found.setdefault((d.unit_column, d.unit_key), []).append(dataset_id)
        return found


def plan(datasets: dict[int, tuple[str, set[str]]], declarations: dict[str, Declaration],
         bundle: set[str] | None = None) -> Plan:
    """Match Superset's datasets to their declarations: a bundle dataset without one, or a declared column the
    dataset lacks, is an RlsError; a dataset made in Superset by hand, not declared, is only warned about."""
    bundle = bundle_tables() if bundle is None else bundle
    result = Plan()
    for dataset_id, (table, columns) in sorted(datasets.items()):
        declaration = declarations.get(table)
        if declaration is None:
            if table in bundle:
                raise RlsError(f"{SECURITY_FILE.name}: no row-level security declared for dataset {table!r}")
            log.warning("dataset %s is not in %s: every role with database access sees all of its rows",
                        table, SECURITY_FILE.name)
            continue
        missing = sorted(declaration.columns - columns)
        if missing:
            raise RlsError(f"{SECURITY_FILE.name}: dataset {table!r} declares column(s) {', '.join(missing)}"
                           " that Superset's dataset does not have")
        if declaration.unit_column:
            result.unit_level[dataset_id] = declaration
        else:
            result.province_wide.append(table)
    return result


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


def _filters(client: httpx.Client, prefix: str) -> list[dict]:
    return [r for r in _paged(client, "/api/v1/rowlevelsecurity/", "filters:!((col:name,opr:sw,value:'"
                              + prefix.replace("'", "!'") + "')),") if r["name"].startswith(prefix)]


def filter_name(code: str, column: str = UNIT_COLUMN) -> str:
    return FILTER_PREFIX + code + ("" if column == UNIT_COLUMN else COLUMN_SEPARATOR + column)


def owned_filters(client: httpx.Client) -> dict[tuple[str, str], dict]:
    """(unit code, unit column) -> the Regular RLS filter this module made for that unit and column."""
    found = {}
    for row in _filters(client, FILTER_PREFIX):
        code, _, column = row["name"][len(FILTER_PREFIX):].partition(COLUMN_SEPARATOR)
        found[code, column or UNIT_COLUMN] = row
    return found


def unit_filters(client: httpx.Client) -> dict[str, dict]:
    """Unit code -> the unit_code RLS filter this module made for it (the one that names its role)."""
    return {code: row for (code, column), row in owned_filters(client).items() if column == UNIT_COLUMN}


def base_filters(client: httpx.Client) -> dict[str, dict]:
    """Table name -> the Base filter (province rows) this module made for it."""
    return {r["name"][len(BASE_PREFIX):]: r for r in _filters(client, BASE_PREFIX)}


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


def _filter_body(unit: Unit, column: str, key: str, role_id: int, table_ids: list[int]) -> dict:
    return {"name": filter_name(unit.code, column), "filter_type": "Regular", "group_key": GROUP_KEY,
            "clause": clause(unit.value(key), column), "roles": [role_id], "tables": table_ids,
            "description": f"Người dùng của đơn vị {unit.code} chỉ thấy các dòng của đơn vị mình."}


def _base_body(declaration: Declaration, dataset_id: int, unit_role_ids: list[int]) -> dict:
    return {"name": BASE_PREFIX + declaration.table, "filter_type": "Base", "group_key": BASE_GROUP_KEY,
            "clause": " and ".join(clause(value, column) for column, value in declaration.province_rows),
            "roles": unit_role_ids, "tables": [dataset_id],
            "description": "Ai không thuộc vai trò của một đơn vị (cấp tỉnh, quản trị) chỉ thấy các dòng"
                           " toàn tỉnh."}


def _same_filter(existing: dict, body: dict) -> bool:
    return (existing["clause"] == body["clause"] and existing["filter_type"] == body["filter_type"]
            and existing.get("group_key") == body["group_key"]
            and sorted(r["id"] for r in existing["roles"]) == body["roles"]
            and sorted(t["id"] for t in existing["tables"]) == body["tables"])


def _put_filter(client: httpx.Client, existing: dict | None, body: dict, result: SyncResult) -> None:
    """Create the filter, or bring the existing one in line with body (counted as an update)."""
    if existing is None:
        _check(client.post("/api/v1/rowlevelsecurity/", json=body), f"create filter {body['name']}")
    elif not _same_filter(existing, body):
        _check(client.put(f"/api/v1/rowlevelsecurity/{existing['id']}", json=body),
               f"update filter {body['name']}")
        result.updated += 1


def _sync_base_filters(client: httpx.Client, planned: Plan, unit_role_ids: list[int],
                       result: SyncResult) -> None:
    """One Base filter per unit-level dataset with province rows, excepting the unit roles; stale ones go."""
    existing = base_filters(client)
    for dataset_id, declaration in sorted(planned.unit_level.items()):
        if declaration.province_rows:
            _put_filter(client, existing.pop(declaration.table, None),
                        _base_body(declaration, dataset_id, unit_role_ids), result)
    for stale in existing.values():  # a dataset no longer declaring province rows
        _check(client.delete(f"/api/v1/rowlevelsecurity/{stale['id']}"), f"delete filter {stale['name']}")
        result.updated += 1


def sync(client: httpx.Client, units: list[Unit] | None = None,
         declarations: dict[str, Declaration] | None = None) -> SyncResult:
    """Bring the unit roles, their RLS filters and the province role in line with dim_unit and the
    declarations (see module doc). `client` is logged in as the admin (ingestion.superset.api_client)."""
    declarations = load_declarations() if declarations is None else declarations
    result = SyncResult()
    planned = plan(superset_datasets(client), declarations)
    result.province_wide = sorted(planned.province_wide)
    if not planned.unit_level:
        result.skipped = "no dataset in Superset is declared unit-level"
        return result
    columns = planned.columns()
    keys = tuple(sorted({key for _, key in columns} - {UNIT_COLUMN}))
    units = load_units(keys) if units is None else units
    filters = owned_filters(client)
    if not units:  # no dim_unit yet (national pipeline only), or an empty one: keep what exists, but whoever
        # is not in a unit role still sees only the province's rows where a dataset holds units' rows too
        result.skipped = "marts.dim_unit is missing or has no agency or commune"
        _sync_base_filters(client, planned, sorted({r["id"] for f in filters.values() for r in f["roles"]}),
                           result)
        return result
    permission_ids = viewer_permission_ids(client)
    roles = list_roles(client)
    result.units = len(units)
    result.datasets = sorted(d.table for d in planned.unit_level.values())

    _ensure_role(client, roles, PROVINCE_ROLE, None, permission_ids, result)
    unit_role_ids = []
    for unit in units:
        mine = [filters.pop((unit.code, column), None) for column, _ in columns]
        owned = [r["id"] for f in mine if f for r in f["roles"]]
        role_id = _ensure_role(client, roles, role_name(unit), owned[0] if owned else None, permission_ids,
                               result)
        unit_role_ids.append(role_id)
        for existing, ((column, key), table_ids) in zip(mine, columns.items(), strict=True):
            _put_filter(client, existing, _filter_body(unit, column, key, role_id, table_ids), result)
    _sync_base_filters(client, planned, sorted(unit_role_ids), result)
    gone: dict[str, list[dict]] = {}  # units gone from dim_unit, or columns no longer used
    for (code, _column), stale in filters.items():
        gone.setdefault(code, []).append(stale)
    kept_units = {unit.code for unit in units}
    for code, stale_filters in gone.items():
        for stale in stale_filters:
            _check(client.delete(f"/api/v1/rowlevelsecurity/{stale['id']}"), f"delete filter {stale['name']}")
        if code in kept_units:  # a unit column no longer in use: only its filter goes
            result.updated += 1
            continue
        for role_id in sorted({r["id"] for f in stale_filters for r in f["roles"]}):
            _check(client.delete(f"/api/v1/security/roles/{role_id}"), f"delete role of unit {code}")
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
    found = unit_filters(client).get(unit_code) or next(
        (f for (code, _), f in owned_filters(client).items() if code == unit_code), None)
    if found is None or not found["roles"]:
        raise RlsError(f"no role for unit {unit_code!r}; is it in marts.dim_unit (agency or commune)?")
    return found["roles"][0]["id"], found["roles"][0]["name"]


def _generated_password() -> str:
    """16 random characters with lower case, upper case and digits (Superset's policy wants three kinds)."""
    while True:
        candidate = secrets.token_urlsafe(12)
        if all(any(kind(c) for c in candidate) for kind in (str.islower, str.isupper, str.isdigit)):
            return candidate


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
    generated = None if password else _generated_password()
    body = {"username": username, "first_name": first_name, "last_name": last_name, "active": True,
            "email": email or f"{username}@chiso.invalid", "password": password or generated,
            "roles": [role_id]}
    _check(client.post("/api/v1/security/users/", json=body), f"create user {username}")
    return role, generated
