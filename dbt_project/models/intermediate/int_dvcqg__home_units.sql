-- The home province's agencies and communes as DVCQG lists them, one row per unit, with the
-- statistics-office commune code matched by normalised name (no diacritics, no 'UBND'/'xã'/'phường').
with

unit_scores as (

    select * from {{ ref('stg_dvcqg__unit_scores') }}

),

provinces as (

    select * from {{ ref('provinces') }}

),

communes as (

    select * from {{ ref('communes') }}

),

home_province as (

    select dvcqg_rootdepartmentid as root_department_id
    from provinces
    where dvcqg_departmentcode = '{{ var("home_province_dvcqg_code") }}'

),

-- the newest listing of each unit gives its code, name and type
latest_units as (

    select distinct on (unit_scores.department_id)
        unit_scores.root_department_id,
        unit_scores.department_id,
        coalesce(unit_scores.department_code, unit_scores.department_id) as unit_code,
        unit_scores.department_name as unit_name,
        unit_scores.unit_type,
        unit_scores.unit_type_source,
        {{ unit_name_key('unit_scores.department_name') }} as name_key

    from unit_scores

    inner join home_province
        on unit_scores.root_department_id = home_province.root_department_id

    where unit_scores.unit_type in ('agency', 'commune')

    order by unit_scores.department_id asc, unit_scores.period_start desc, unit_scores.loaded_at desc

),

commune_names as (

    select
        commune_code_2025 as commune_code,
        commune_name_2025 as commune_name,
        {{ unit_name_key('commune_name_2025') }} as name_key

    from communes

),

-- a key two communes share matches neither
commune_keys as (

    select
        name_key,
        min(commune_code) as commune_code,
        min(commune_name) as commune_name,
        count(*) as candidates

    from commune_names

    group by name_key

),

matched as (

    select
        latest_units.root_department_id,
        latest_units.department_id,
        latest_units.unit_code,
        latest_units.unit_name,
        latest_units.unit_type,
        latest_units.unit_type_source,
        latest_units.name_key,
        commune_keys.commune_code,
        commune_keys.commune_name

    from latest_units

    left join commune_keys
        on
            latest_units.unit_type = 'commune'
            and latest_units.name_key = commune_keys.name_key
            and commune_keys.candidates = 1

)

select * from matched
