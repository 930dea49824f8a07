-- The province, its agencies and its communes: the crosswalk between the provincial dossier system's unit
-- list (S2 /units: MaDonVi is the DVCQG department code H15 / H15.<n>), the statistics-office codes (seeds
-- provinces and communes) and DVCQG's department ids (S1, int_dvcqg__home_units), with the pre-merger units.
with

units as (

    select * from {{ ref('stg_igate__units') }}

),

communes as (

    select * from {{ ref('communes') }}

),

provinces as (

    select * from {{ ref('provinces') }}

),

-- one DVCQG listing per unit code (a code listed under two ids keeps the lowest id)
dvcqg_units as (

    select distinct on (unit_code)
        unit_code,
        department_id,
        unit_name

    from {{ ref('int_dvcqg__home_units') }}

    order by unit_code asc, department_id asc

),

predecessors as (

    select * from {{ ref('dim_unit_predecessor') }}

),

home_province as (

    select
        province_code_2025 as statistics_code,
        province_name_2025 as official_name,
        dvcqg_departmentcode as unit_code,
        dvcqg_rootdepartmentid as department_id,
        dvcqg_departmentname as dvcqg_unit_name

    from provinces

    where dvcqg_departmentcode = '{{ var("home_province_dvcqg_code") }}'

),

predecessor_lists as (

    select
        unit_code,
        array_agg(predecessor_code order by predecessor_position) as predecessor_codes,
        array_agg(predecessor_name order by predecessor_position) as predecessor_names

    from predecessors

    group by unit_code

),

final as (

    select
        units.unit_code,
        coalesce(communes.commune_name_2025, home_province.official_name, units.unit_name) as unit_name,
        case
            when units.unit_level = 'TINH' then 'province'
            when units.unit_level = 'XA' or units.commune_code is not null then 'commune'
            else 'agency'
        end as unit_type,
        units.unit_level,
        units.parent_unit_code,
        coalesce(units.commune_code, home_province.statistics_code) as statistics_code,
        communes.unit_type as commune_type,
        units.unit_code as igate_unit_code,
        units.unit_name as igate_unit_name,
        coalesce(dvcqg_units.department_id, home_province.department_id) as dvcqg_department_id,
        coalesce(dvcqg_units.unit_name, home_province.dvcqg_unit_name) as dvcqg_unit_name,
        coalesce(predecessor_lists.predecessor_codes, '{}'::text[]) as predecessor_codes,
        coalesce(predecessor_lists.predecessor_names, '{}'::text[]) as predecessor_names

    from units

    left join communes
        on units.commune_code = communes.commune_code_2025

    left join home_province
        on units.unit_code = home_province.unit_code

    left join dvcqg_units
        on units.unit_code = dvcqg_units.unit_code

    left join predecessor_lists
        on units.unit_code = predecessor_lists.unit_code

)

select * from final
