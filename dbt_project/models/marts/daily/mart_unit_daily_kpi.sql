-- The daily-operations figures per unit and day: every unit of dim_unit on every day of the data window
-- (int_daily__unit_day_dossiers), zeros where nothing happened and null rates where nothing could be
-- judged. The province's row (unit_type 'province') sums all units, as in the service index.
with

unit_days as (

    select * from {{ ref('int_daily__unit_day_dossiers') }}

),

units as (

    select * from {{ ref('dim_unit') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

dossier_daily as (

    select * from {{ ref('int_index766__dossier_daily') }}

),

ratings as (

    select * from {{ ref('fct_rating') }}

),

petitions as (

    select * from {{ ref('fct_feedback') }}

),

index_scores as (

    select * from {{ ref('mart_unit_index_766') }}

),

-- received- and finished-based counts per day: the service index's daily increments (province rows
-- included), summed over the months they belong to
dossier_days as (

    select
        unit_code,
        event_date,
        sum(received) as received,
        sum(received_online) as received_online,
        sum(received_with_fee) as received_with_fee,
        sum(received_fee_paid_online) as received_paid_online,
        sum(finished) as finished,
        sum(finished_digitised) as finished_digitised

    from dossier_daily

    group by unit_code, event_date

),

feedback_events as (

    select
        unit_code,
        rated_date as event_date,
        1 as ratings,
        case when is_not_satisfied then 0 else 1 end as ratings_satisfied,
        0 as petitions_received

    from ratings

    where rated_date is not null

    union all

    select
        unit_code,
        received_date as event_date,
        0 as ratings,
        0 as ratings_satisfied,
        1 as petitions_received

    from petitions

    where received_date is not null

),

-- units keep their own ratings and petitions; the province's row counts them all
feedback_days as (

    select
        unit_code,
        event_date,
        sum(ratings) as ratings,
        sum(ratings_satisfied) as ratings_satisfied,
        sum(petitions_received) as petitions_received

    from feedback_events

    where unit_code != '{{ var("home_province_dvcqg_code") }}'

    group by unit_code, event_date

    union all

    select
        '{{ var("home_province_dvcqg_code") }}' as unit_code,
        event_date,
        sum(ratings) as ratings,
        sum(ratings_satisfied) as ratings_satisfied,
        sum(petitions_received) as petitions_received

    from feedback_events

    group by event_date

),

-- the service index month to date on each day, and its change since the day before in the same month
index_days as (

    select
        unit_code,
        as_of_date,
        total_score,
        total_score - lag(total_score) over (
            partition by unit_code, period_start order by as_of_date
        ) as score_change

    from index_scores

),

counted as (

    select
        unit_days.unit_code,
        unit_days.kpi_date,
        coalesce(dossier_days.received, 0)::integer as received,
        coalesce(dossier_days.received_online, 0)::integer as received_online,
        coalesce(dossier_days.received_with_fee, 0)::integer as received_with_fee,
        coalesce(dossier_days.received_paid_online, 0)::integer as received_paid_online,
        coalesce(dossier_days.finished, 0)::integer as finished,
        unit_days.finished_on_time,
        coalesce(dossier_days.finished_digitised, 0)::integer as finished_digitised,
        unit_days.open_within_due,
        unit_days.open_overdue,
        unit_days.due_within_one_working_day,
        unit_days.overdue_max_working_days,
        coalesce(feedback_days.ratings, 0)::integer as ratings,
        coalesce(feedback_days.ratings_satisfied, 0)::integer as ratings_satisfied,
        coalesce(feedback_days.petitions_received, 0)::integer as petitions_received,
        index_days.total_score as index_total_score,
        index_days.score_change as index_score_change

    from unit_days

    left join dossier_days
        on
            unit_days.unit_code = dossier_days.unit_code
            and unit_days.kpi_date = dossier_days.event_date

    left join feedback_days
        on
            unit_days.unit_code = feedback_days.unit_code
            and unit_days.kpi_date = feedback_days.event_date

    left join index_days
        on
            unit_days.unit_code = index_days.unit_code
            and unit_days.kpi_date = index_days.as_of_date

),

final as (

    select
        counted.unit_code,
        counted.kpi_date,
        units.unit_name,
        units.unit_type,
        units.statistics_code,
        calendar.is_working_day,
        counted.kpi_date = max(counted.kpi_date) over () as is_as_of_date,
        counted.received,
        counted.received_online,
        counted.received_with_fee,
        counted.received_paid_online,
        counted.finished,
        counted.finished_on_time,
        counted.finished_digitised,
        counted.open_within_due,
        counted.open_overdue,
        counted.due_within_one_working_day,
        counted.overdue_max_working_days,
        counted.finished + counted.open_within_due + counted.open_overdue as handled,
        -- the service index's progress ratio (TDGQ) with the day as the period: finished on time that day plus
        -- open within the due date, over finished that day plus open
        round(
            (counted.finished_on_time + counted.open_within_due)::numeric
            / nullif(counted.finished + counted.open_within_due + counted.open_overdue, 0),
            4
        ) as on_time_rate,
        round(counted.received_online::numeric / nullif(counted.received, 0), 4) as online_share,
        round(counted.received_paid_online::numeric / nullif(counted.received_with_fee, 0), 4) as paid_online_share,
        round(counted.finished_digitised::numeric / nullif(counted.finished, 0), 4) as digitised_share,
        counted.ratings,
        counted.ratings_satisfied,
        round(counted.ratings_satisfied::numeric / nullif(counted.ratings, 0), 4) as satisfaction_rate,
        counted.petitions_received,
        counted.index_total_score,
        counted.index_score_change

    from counted

    inner join units
        on counted.unit_code = units.unit_code

    inner join calendar
        on counted.kpi_date = calendar.date_day

)

select * from final
