-- Raw tables of the provincial sources S2-S4 (dossiers, feedback, centres). Owned by the loader.
-- Like S1: key columns typed in SQL at load time, each record kept whole (jsonb, NFC) beside them.
-- Idempotent; runs on every `chiso up` after warehouse.sql.
set role chiso_loader;

-- 'yyyyMMddHHmmss' local time (Asia/Ho_Chi_Minh, UTC+7 with no DST) -> timestamptz; null for empty or
-- impossible values (never an error: a bad date quarantines its record, it does not stop the load).
-- Plain SQL of immutable operators so it inlines: 14 ASCII digits, then every field checked and taken by
-- integer arithmetic on the number (years 1900-2099; the month's length only looked at past day 28) and
-- made a timestamp at UTC+7. About 1.2 us a value, half the cost of a regex and a cast of reformatted text.
-- Give it a plain column or a value computed once (Target.derived): inlined, `v` is copied into each use.
create or replace function raw.local_ts(v text) returns timestamptz
language sql immutable parallel safe as $$
    select case when octet_length(v) = 14 and ltrim(v, '0123456789') = ''
                 and v::bigint % 1000000 < 240000 and v::bigint % 10000 < 6000 and v::bigint % 100 < 60
                 and v::bigint / 100000000 % 100 between 1 and 12 and v::bigint / 1000000 % 100 between 1 and 31
                 and v::bigint >= 19000000000000 and v::bigint < 21000000000000
                 and (v::bigint / 1000000 % 100 <= 28 or v::bigint / 1000000 % 100 <= case v::bigint / 100000000 % 100
                      when 2 then 28 + (v::bigint / 10000000000 % 4 = 0 and v::bigint / 10000000000 <> 1900)::int
                      when 4 then 30 when 6 then 30 when 9 then 30 when 11 then 30 else 31 end)
        then make_timestamp((v::bigint / 10000000000)::int, (v::bigint / 100000000 % 100)::int,
                            (v::bigint / 1000000 % 100)::int, (v::bigint / 10000 % 100)::int,
                            (v::bigint / 100 % 100)::int, (v::bigint % 100)::int)
             at time zone interval '07:00'
    end
$$;

-- ISO-8601 (S4 ThoiDiem) -> timestamptz, null when it does not parse. Few rows: an exception block is fine.
create or replace function raw.iso_ts(v text) returns timestamptz
language plpgsql stable parallel safe as $$
begin
    if v is null or v !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}' then
        return null;
    end if;
    return v::timestamptz;
exception when others then
    return null;
end
$$;

-- A JSON scalar as an integer, null when empty or not an integer.
create or replace function raw.int_or_null(v text) returns integer
language sql immutable parallel safe as $$
    select case when v ~ '^-?\d{1,9}$' then v::integer end
$$;

-- A JSON scalar as a smallint, null when empty, not an integer or out of range (never an error).
create or replace function raw.smallint_or_null(v text) returns smallint
language sql immutable parallel safe as $$
    select case when v ~ '^-?\d{1,5}$' and v::integer between -32768 and 32767 then v::smallint end
$$;

-- S2 /units: the provincial dossier system's unit list (replaced whole at each dossiers extract).
create table if not exists raw.units (
    ma_don_vi text primary key,            -- DVCQG department code: H15 or H15.<n>
    ten_don_vi text,
    cap_don_vi text,                        -- TINH, SO_NGANH, XA
    ma_don_vi_cha text,
    ma_hanh_chinh text,                     -- 5-digit statistics-office commune code (null for agencies)
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now()
);

-- Every code or name a record may carry -> the current unit (MaDonVi). Rebuilt in the same transaction as
-- raw.units from /units plus ingestion/reference/daklak_102_communes_2025.csv:
--   kind 'code': current unit codes (themselves), their 5-digit commune codes, and pre-merger
--   statistics-office codes; kind 'name': lower-case NFC names (current and pre-merger) that are unique.
-- A pre-merger unit split between several new communes (merge type 'partial') maps to ONE of them, the one
-- it mostly went to. The reference list gives no shares, so "mostly" is decided by, in order: the new
-- commune that kept the old unit's statistics code; the one whose name (without Xã/Phường) equals the old
-- unit's; the largest by area; the lowest code. `rule` says which applied.
create table if not exists raw.unit_crosswalk (
    key_kind text not null check (key_kind in ('code', 'name')),
    source_key text not null,
    unit_code text not null,                -- raw.units.ma_don_vi
    commune_code text,                      -- statistics-office code of the unit, when a commune
    match text not null,                    -- current, commune_code, pre_merger_full, pre_merger_partial, ...
    rule text,                              -- for partial merges: which tie-break chose the commune
    run_id bigint references audit.extract_runs (run_id),
    primary key (key_kind, source_key)
);

-- S2 /procedures: the procedure catalogue (replaced whole at each dossiers extract).
create table if not exists raw.procedures (
    ma_tthc text primary key,
    ten_tthc text,
    ma_linh_vuc text,
    cap_thuc_hien text,
    muc_do_dvc text,
    tich_hop_dvcqg boolean,
    co_phi_le_phi boolean,
    thoi_han_giai_quyet_ngay numeric,
    ngay_cong_bo timestamptz,
    trang_thai text,
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now()
);

-- S2 /dossiers: one row per dossier version (a dossier is sent whole at each change; newest wins downstream).
-- Personal data (ChuHoSo, MaDoiTuong, SoDienThoai, Email) is taken out of `record` into its own columns,
-- which only the loader may read; applicant_hash (sha256 of the salt || MaDoiTuong) is what staging keeps.
create table if not exists raw.dossiers (
    ma_ho_so text not null,
    ngay_cap_nhat timestamptz not null,
    ma_tthc text,
    ma_linh_vuc text,
    ma_don_vi text not null,                -- the current unit (through raw.unit_crosswalk)
    ma_don_vi_nguon text,                   -- the code as the source sent it (may be pre-merger)
    kenh_thuc_hien smallint,
    loai_doi_tuong smallint,
    trang_thai smallint not null,
    ngay_nop_ho_so timestamptz,
    ngay_tiep_nhan timestamptz,
    ngay_hen_tra timestamptz,
    ngay_ket_thuc_xu_ly timestamptz,
    ngay_tra timestamptz,
    duoc_thanh_toan_truc_tuyen smallint,
    applicant_hash text,
    chu_ho_so text,                         -- personal data: loader only
    ma_doi_tuong text,                      -- personal data: loader only
    so_dien_thoai text,                     -- personal data: loader only
    email text,                             -- personal data: loader only
    record jsonb not null,                  -- the dossier without the four personal fields
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now(),
    primary key (ma_ho_so, ngay_cap_nhat)
);
create index if not exists dossiers_updated_idx on raw.dossiers (ngay_cap_nhat);
-- the nightly fct_dossier build reads only the versions loaded since its last build (dbt, incremental)
create index if not exists dossiers_loaded_idx on raw.dossiers (loaded_at);

-- S3 /feedback (PAKN) and /ratings: versions by NgayCapNhat, like dossiers.
create table if not exists raw.feedback (
    ma_pakn text not null,
    ngay_cap_nhat timestamptz not null,
    ma_don_vi text not null,
    ma_don_vi_nguon text,
    ma_ho_so text,
    phan_loai text,
    trang_thai text not null,
    ngay_tiep_nhan timestamptz,
    han_xu_ly timestamptz,
    ngay_xu_ly timestamptz,
    so_luot_thich integer,
    so_luot_khong_thich integer,
    tiep_tuc_phan_anh boolean,
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now(),
    primary key (ma_pakn, ngay_cap_nhat)
);
create index if not exists feedback_updated_idx on raw.feedback (ngay_cap_nhat);

create table if not exists raw.ratings (
    ma_danh_gia text not null,
    ngay_cap_nhat timestamptz not null,
    ma_ho_so text,
    ma_don_vi text not null,
    ma_don_vi_nguon text,
    muc_do smallint not null,
    ngay_danh_gia timestamptz,
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now(),
    primary key (ma_danh_gia, ngay_cap_nhat)
);
create index if not exists ratings_updated_idx on raw.ratings (ngay_cap_nhat);

-- S4 /centres (replaced whole at each extract) and hourly /centres/snapshots (by ThoiDiem).
create table if not exists raw.centres (
    ma_trung_tam text primary key,
    ma_don_vi text not null,
    ma_don_vi_nguon text,
    ten_trung_tam text,
    so_camera integer,
    so_quay integer,
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now()
);

create table if not exists raw.centre_snapshots (
    ma_trung_tam text not null,
    thoi_diem timestamptz not null,
    camera_truc_tuyen integer,
    quay_hoat_dong integer,
    so_phieu_cap integer,
    thoi_gian_cho_tb numeric,
    thoi_gian_cho_max numeric,
    record jsonb not null,
    run_id bigint not null references audit.extract_runs (run_id),
    landing_file text,
    page_no integer,
    loaded_at timestamptz not null default now(),
    primary key (ma_trung_tam, thoi_diem)
);

-- Personal data in raw.dossiers: the transform role (dbt) reads every column but the four personal ones.
-- Default privileges gave it SELECT on the whole table; take that back and grant column by column.
revoke select on raw.dossiers from chiso_transform;
do $$
declare cols text;
begin
    select string_agg(quote_ident(attname), ', ' order by attnum) into cols
    from pg_attribute
    where attrelid = 'raw.dossiers'::regclass and attnum > 0 and not attisdropped
      and attname not in ('chu_ho_so', 'ma_doi_tuong', 'so_dien_thoai', 'email');
    execute format('grant select (%s) on raw.dossiers to chiso_transform', cols);
end
$$;

reset role;

-- Work tables of the loads in progress (ingestion.load stages each run's records here, personal data
-- included, from two sessions at once): the loader's alone, nothing granted to anyone else.
create schema if not exists loading authorization chiso_loader;
revoke all on schema loading from public;
