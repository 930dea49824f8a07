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
        coalesce(total_score, {{ json_num("record ->> 'totalScore'") }})::numeric(7, 2) as total_score,
        coalesce(ratio, {{ json_num("record ->> 'ratio'") }})::numeric(7, 2) as ratio,
        coalesce(score_delta, {{ json_num("record ->> 'scoreDelta'") }})::numeric(7, 2) as score_delta,
        coalesce(ckmb, {{ json_num("record -> 'groupScores' ->> 'CKMB'") }})::numeric(7, 2) as ckmb,
        coalesce(tdgq, {{ json_num("record -> 'groupScores' ->> 'TDGQ'") }})::numeric(7, 2) as tdgq,
        coalesce(clgq, {{ json_num("record -> 'groupScores' ->> 'CLGQ'") }})::numeric(7, 2) as clgq,
        coalesce(tttt, {{ json_num("record -> 'groupScores' ->> 'TTTT'") }})::numeric(7, 2) as tttt,
        coalesce(mdhl, {{ json_num("record -> 'groupScores' ->> 'MDHL'") }})::numeric(7, 2) as mdhl,
        coalesce(mdsh, {{ json_num("record -> 'groupScores' ->> 'MDSH'") }})::numeric(7, 2) as mdsh,
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
