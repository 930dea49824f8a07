-- One row per petition (PAKN): its newest version, with local dates and the index's verdicts.
with

petition_versions as (

    select * from {{ ref('stg_feedback__petitions') }}

),

latest as (

    select distinct on (petition_code) *
    from petition_versions
    order by petition_code asc, updated_at desc

),

judged as (

    select
        *,
        case when deadline_at is not null and handled_at is not null then handled_at <= deadline_at end
            as is_on_time,
        coalesce(dislikes, 0) > coalesce(likes, 0) or coalesce(is_follow_up, false) as is_unsatisfied

    from latest

),

final as (

    select
        petition_code,
        updated_at,
        unit_code,
        dossier_code,
        category,
        status,
        received_at,
        deadline_at,
        handled_at,
        {{ local_date('received_at') }} as received_date,
        {{ month_start(local_date('received_at')) }} as received_month,
        {{ local_date('deadline_at') }} as deadline_date,
        {{ local_date('handled_at') }} as handled_date,
        handled_at is not null as is_handled,
        is_on_time,
        -- first as-of day counted overdue: the day after the deadline's day while unhandled, the handling
        -- day at the latest when handled late; never when handled in time or without a deadline
        case
            when deadline_at is null or is_on_time then null
            else least({{ local_date('deadline_at') }} + 1, {{ local_date('handled_at') }})
        end as overdue_from_date,
        coalesce(likes, 0) as likes,
        coalesce(dislikes, 0) as dislikes,
        coalesce(is_follow_up, false) as is_follow_up,
        is_unsatisfied,
        loaded_at

    from judged

)

select * from final
