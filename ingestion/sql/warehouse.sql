-- Tables the loader owns: audit, quarantine and raw. Idempotent; runs on every `chiso up`.
-- Raw tables keep each source record whole (jsonb) beside the key columns typed in SQL at load time.
set role chiso_loader;

create table if not exists audit.extract_runs (
    run_id bigserial primary key,
    source text not null,                 -- dvcqg, dossiers, feedback, centres
    entity text not null,                 -- endpoint or list name within the source
    window_start timestamptz,
    window_end timestamptz,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null default 'running' check (status in ('running', 'success', 'failed')),
    pages integer not null default 0,
    records_received bigint not null default 0,
    records_loaded bigint not null default 0,
    records_quarantined bigint not null default 0,
    bytes bigint not null default 0,
    checksum text,                        -- sha256 over the landed pages' checksums, in page order
    landing_path text,
    error text,
    details jsonb not null default '{}'
);
create index if not exists extract_runs_source_idx on audit.extract_runs (source, entity, started_at desc);

create table if not exists audit.validation_runs (
    validation_id bigserial primary key,
    suite text not null,
    layer text not null check (layer in ('raw', 'mart')),
    target text not null,                 -- schema.table validated
    pipeline_run text,                    -- Airflow run id or CLI run id
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    success boolean,
    expectations_evaluated integer,
    expectations_failed integer,
    results jsonb not null default '{}'
);

create table if not exists audit.dbt_runs (
    invocation_id text primary key,
    command text not null,
    pipeline_run text,
    started_at timestamptz,
    finished_at timestamptz,
    status text not null,
    nodes integer,
    failures integer,
    results jsonb not null default '{}'
);

-- A mart set is published (made current for dashboards) only after its gate passed.
create table if not exists audit.publications (
    publication_id bigserial primary key,
    dataset text not null,                -- the Airflow asset published, e.g. chiso://marts/national_index
    pipeline_run text,
    window_start date,
    window_end date,
    published_at timestamptz not null default now(),
    details jsonb not null default '{}'
);

-- alerts delivered (ingestion/alerts.py): a re-run or retry of a night does not repeat one
create table if not exists audit.alerts_sent (
    kind text not null,             -- new_red_hotspot
    alert_key text not null,        -- the unit
    as_of_date date not null,
    dag_id text,
    run_id text,
    message text not null,
    channels integer not null,      -- how many channels took it
    sent_at timestamptz not null,
    primary key (kind, alert_key, as_of_date)
);

create table if not exists audit.watermarks (
    source text not null,
    entity text not null,
    watermark timestamptz not null,
    run_id bigint references audit.extract_runs (run_id),
    updated_at timestamptz not null default now(),
    primary key (source, entity)
);

create table if not exists quarantine.records (
    quarantine_id bigserial primary key,
    run_id bigint references audit.extract_runs (run_id),
    source text not null,
    entity text not null,
    landing_file text,
    page_no integer,
    record_key text,
    record jsonb,                         -- the record when it parsed as JSON
    raw_text text,                        -- else the bytes as text
    reason text not null,
    quarantined_at timestamptz not null default now()
);
create index if not exists quarantine_run_idx on quarantine.records (run_id);
-- One row per rejected record and reason, however many runs saw it (a back-fill re-reads the same
-- rejects): record_hash = md5 of the record kept; run_id is the first run that saw it, last_run_id the
-- latest, times_seen how many runs. A record that is not JSON (a page PostgreSQL could not read) has no
-- hash and gets a row per run.
alter table quarantine.records add column if not exists record_hash text,
    add column if not exists last_run_id bigint,
    add column if not exists times_seen integer not null default 1;
update quarantine.records set record_hash = md5(record::text), last_run_id = run_id
where record_hash is null and record is not null;
delete from quarantine.records q using quarantine.records o
where q.record_hash = o.record_hash and q.source = o.source and q.entity = o.entity and q.reason = o.reason
  and q.quarantine_id > o.quarantine_id;
create unique index if not exists quarantine_record_idx on quarantine.records (source, entity, reason, record_hash)
where record_hash is not null;

-- S1 DVCQG: the score tables (national: 34 provinces; per province: its agencies and communes).
create table if not exists raw.dvcqg_service_results (
    period_type text not null check (period_type in ('month', 'quarter', 'year')),
    period_start date not null,
    scope text not null,                  -- 'national', or the rootDepartmentId of a province
    department_id text not null,
    department_code text,
    department_name text,
    total_score numeric(7, 2),
    ratio numeric(7, 2),
    score_delta numeric(7, 2),
    ckmb numeric(7, 2),
    tdgq numeric(7, 2),
    clgq numeric(7, 2),
    tttt numeric(7, 2),
    mdhl numeric(7, 2),
    mdsh numeric(7, 2),
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now(),
    primary key (period_type, period_start, scope, department_id)
);

-- S1 DVCQG: the per-group detail endpoints, one row per unit x group x period, record kept whole.
create table if not exists raw.dvcqg_group_details (
    endpoint text not null,               -- transparency, dvc-progress-tree, provide-online-tree, ...
    group_code text not null,             -- CKMB, TDGQ, CLGQ, TTTT, MDSH, MDHL
    period_type text not null check (period_type in ('month', 'quarter', 'year')),
    period_start date not null,
    root_department_id text not null,
    department_id text not null,
    department_code text,
    department_name text,
    is_parent boolean not null default false,  -- the province's own row (overview/parent)
    score numeric(7, 2),
    max_score numeric(7, 2),
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now(),
    primary key (endpoint, period_type, period_start, root_department_id, department_id)
);

reset role;
