with

service_results as (

    select * from {{ source('dvcqg', 'dvcqg_service_results') }}

),

group_details as (

    select * from {{ source('dvcqg', 'dvcqg_group_details') }}

),

-- what the group-detail endpoints say a unit is (departmentType/departmentLevel, or level in the trees)
unit_levels as (

    select distinct on (root_department_id, department_id)
        root_department_id,
        department_id,
        upper(nullif(record ->> 'departmentType', '')) as department_type,
        upper(coalesce(nullif(record ->> 'departmentLevel', ''), nullif(record ->> 'level', '')))
            as department_level

    from group_details

    where
        not is_parent
        and coalesce(
            nullif(record ->> 'departmentType', ''),
            nullif(record ->> 'departmentLevel', ''),
            nullif(record ->> 'level', '')
        ) is not null

    order by root_department_id asc, department_id asc, loaded_at desc

),

renamed as (

    select
        period_type,
        period_start,
        scope as root_department_id,
        department_id,
        department_code,
        normalize(department_name) as department_name,
        {{ dvcqg_score_columns() }},
        run_id,
        loaded_at

    from service_results

    where scope != 'national'

),

typed as (

    select
        renamed.*,
        case
            when renamed.department_id = renamed.root_department_id then 'province'
            when unit_levels.department_type = 'PROVINCE' then 'province'
            when unit_levels.department_type = 'COMMUNE_PEOPLE_COMMITTEE' then 'commune'
            when unit_levels.department_level = 'COMMUNE' then 'commune'
            when unit_levels.department_level is not null then 'agency'
            when lower(renamed.department_name) ~ '^\s*(ubnd\s+)?(xã|phường|đặc khu)\s' then 'commune'
            when renamed.department_code !~ '\.' then 'province'
            else 'agency'
        end as unit_type,
        case
            when renamed.department_id = renamed.root_department_id then 'root'
            when unit_levels.department_id is not null then 'group_details'
            else 'name'
        end as unit_type_source

    from renamed

    left join unit_levels
        on
            renamed.root_department_id = unit_levels.root_department_id
            and renamed.department_id = unit_levels.department_id

)

select * from typed
