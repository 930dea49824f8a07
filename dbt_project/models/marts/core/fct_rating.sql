-- One row per satisfaction rating: its newest version, with its local date.
with

rating_versions as (

    select * from {{ ref('stg_feedback__ratings') }}

),

latest as (

    select distinct on (rating_code) *
    from rating_versions
    order by rating_code asc, updated_at desc

),

final as (

    select
        rating_code,
        updated_at,
        dossier_code,
        unit_code,
        satisfaction,
        satisfaction = 3 as is_not_satisfied,
        rated_at,
        {{ local_date('rated_at') }} as rated_date,
        {{ month_start(local_date('rated_at')) }} as rated_month,
        loaded_at

    from latest

)

select * from final
