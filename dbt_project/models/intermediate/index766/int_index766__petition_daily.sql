-- Petition counts per unit, period (month received) and event day: received on the receiving day; turning
-- overdue or unsatisfied on that day when inside the month received. Province rows are the sums.
-- Incremental by month (macros/index766_incremental.sql).
{% set first_month = index766_first_changed_month() %}
with

petitions as (

    select * from {{ ref('fct_feedback') }}

),

judged as (

    select
        unit_code,
        received_month,
        received_date,
        -- greatest() skips nulls: a null overdue_from_date (never overdue) stays null
        case when overdue_from_date is not null then greatest(overdue_from_date, received_date) end
            as overdue_from_date,
        -- the latest state's dislikes and follow-ups count from the day the petition was received
        case
            when is_unsatisfied then received_date
            when overdue_from_date is not null then greatest(overdue_from_date, received_date)
        end as unsatisfied_from_date

    from petitions

    where
        received_date is not null
        and received_month >= {{ first_month }}

),

events as (

    select
        judged.unit_code,
        judged.received_month as period_start,
        event_row.event_date,
        event_row.petitions,
        event_row.petitions_overdue,
        event_row.petitions_unsatisfied

    from judged

    cross join
        lateral (
            values
            (judged.received_date, 1, 0, 0),
            (judged.overdue_from_date, 0, 1, 0),
            (judged.unsatisfied_from_date, 0, 0, 1)
        ) as event_row (event_date, petitions, petitions_overdue, petitions_unsatisfied)

    where event_row.event_date < judged.received_month + interval '1 month'

),

unit_days as (

    select
        unit_code,
        period_start,
        event_date,
        sum(petitions) as petitions,
        sum(petitions_overdue) as petitions_overdue,
        sum(petitions_unsatisfied) as petitions_unsatisfied

    from events

    where unit_code != '{{ var("home_province_dvcqg_code") }}'

    group by unit_code, period_start, event_date

),

province_days as (

    select
        '{{ var("home_province_dvcqg_code") }}' as unit_code,
        period_start,
        event_date,
        sum(petitions) as petitions,
        sum(petitions_overdue) as petitions_overdue,
        sum(petitions_unsatisfied) as petitions_unsatisfied

    from events

    group by period_start, event_date

),

final as (

    select * from unit_days
    union all
    select * from province_days

)

select
    *,
    now() as built_at

from final
