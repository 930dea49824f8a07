with

source as (

    select * from {{ source('dvcqg', 'dvcqg_service_results') }}

),

renamed as (

    select
        period_type,
        period_start,
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

    from source

    where scope = 'national'

)

select * from renamed
