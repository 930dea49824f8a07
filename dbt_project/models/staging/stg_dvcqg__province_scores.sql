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
        {{ dvcqg_score_columns() }},
        run_id,
        loaded_at

    from source

    where scope = 'national'

)

select * from renamed
