-- The dossiers' state at the end of every day of the data window, per unit: finished on time that day, open
-- within their due date, open overdue (and how many working days the oldest is past its due day), and open
-- ones due by the end of the next working day. Every unit of dim_unit on every day; the province's row
-- (its own code) sums all units, as in the service index.
--
-- The data window ends on the service index's as-of day (mart_unit_index_766: var index766_as_of_date, else
-- the newest day a dossier was received: the night's "today", not the wall clock) and spans at most
-- var daily_kpi_days days, not before the index's first day.
with

dossiers as (

    select * from {{ ref('fct_dossier') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

units as (

    select * from {{ ref('dim_unit') }}

),

index_days as (

    select * from {{ ref('mart_unit_index_766') }}

),

bounds as (

    select
        greatest(min(as_of_date), max(as_of_date) - {{ var('daily_kpi_days') }} + 1) as first_day,
        max(as_of_date) as last_day

    from index_days

),

days as (

    select
        calendar.date_day,
        calendar.working_day_number

    from calendar

    inner join bounds
        on calendar.date_day between bounds.first_day and bounds.last_day

),

-- the last working day before each day
previous_working_days as (

    select
        date_day,
        max(date_day) filter (where is_working_day) over (
            order by date_day rows between unbounded preceding and 1 preceding
        ) as previous_working_day

    from calendar

),

-- the dossiers that matter in the window (open at some day of it, or finished in it), with the service
-- index's verdicts: overdue from overdue_from_date (never before receipt), on time until the last on-time
-- day (overdue_at's day; null while the clock is stopped by a supplement request); withdrawn dossiers and
-- dossiers never received are not judged
judged as (

    select
        dossiers.unit_code,
        dossiers.received_date,
        dossiers.finished_date,
        case
            when dossiers.overdue_from_date is not null
                then greatest(dossiers.overdue_from_date, dossiers.received_date)
        end as overdue_from_date,
        {{ local_date('dossiers.overdue_at') }} as last_on_time_date

    from dossiers

    cross join bounds

    where
        dossiers.received_at is not null
        and not dossiers.is_withdrawn
        and dossiers.received_date <= bounds.last_day
        and (dossiers.finished_date is null or dossiers.finished_date >= bounds.first_day)

),

-- the days each dossier spends in a state, as [from_date, until_date) (until null: still in it)
intervals as (

    -- open: from receipt to the end of processing
    select
        unit_code,
        'open' as state,
        received_date as from_date,
        finished_date as until_date,
        null::date as overdue_from_date

    from judged

    union all

    -- open and overdue
    select
        unit_code,
        'open_overdue' as state,
        overdue_from_date as from_date,
        finished_date as until_date,
        overdue_from_date

    from judged

    where overdue_from_date is not null

    union all

    -- open, not overdue, due by the end of the next working day: on the days from the working day before
    -- the last on-time day up to that day (on those days the next working day is on or after it)
    select
        judged.unit_code,
        'due_soon' as state,
        greatest(previous_working_days.previous_working_day, judged.received_date) as from_date,
        least(judged.last_on_time_date + 1, judged.finished_date, judged.overdue_from_date) as until_date,
        null::date as overdue_from_date

    from judged

    inner join previous_working_days
        on judged.last_on_time_date = previous_working_days.date_day

),

states as (

    select
        intervals.unit_code,
        days.date_day,
        count(*) filter (where intervals.state = 'open') as open_total,
        count(*) filter (where intervals.state = 'open_overdue') as open_overdue,
        count(*) filter (where intervals.state = 'due_soon') as due_soon,
        min(intervals.overdue_from_date) as oldest_overdue_from_date

    from intervals

    inner join days
        on
            intervals.from_date <= days.date_day
            and (intervals.until_date is null or intervals.until_date > days.date_day)

    group by intervals.unit_code, days.date_day

),

-- finished that day and never overdue (the index's on-time verdict)
finished as (

    select
        judged.unit_code,
        judged.finished_date as date_day,
        count(*) filter (where judged.overdue_from_date is null) as finished_on_time

    from judged

    inner join days
        on judged.finished_date = days.date_day

    group by judged.unit_code, judged.finished_date

),

per_unit as (

    select
        coalesce(states.unit_code, finished.unit_code) as unit_code,
        coalesce(states.date_day, finished.date_day) as date_day,
        coalesce(finished.finished_on_time, 0) as finished_on_time,
        coalesce(states.open_total, 0) as open_total,
        coalesce(states.open_overdue, 0) as open_overdue,
        coalesce(states.due_soon, 0) as due_soon,
        states.oldest_overdue_from_date

    from states

    full outer join finished
        on
            states.unit_code = finished.unit_code
            and states.date_day = finished.date_day

),

-- units keep their own dossiers; the province's row sums every unit's, its own included
rolled_up as (

    select * from per_unit
    where unit_code != '{{ var("home_province_dvcqg_code") }}'

    union all

    select
        '{{ var("home_province_dvcqg_code") }}' as unit_code,
        date_day,
        sum(finished_on_time) as finished_on_time,
        sum(open_total) as open_total,
        sum(open_overdue) as open_overdue,
        sum(due_soon) as due_soon,
        min(oldest_overdue_from_date) as oldest_overdue_from_date

    from per_unit

    group by date_day

),

final as (

    select
        units.unit_code,
        days.date_day as kpi_date,
        coalesce(rolled_up.finished_on_time, 0)::integer as finished_on_time,
        coalesce(rolled_up.open_total - rolled_up.open_overdue, 0)::integer as open_within_due,
        coalesce(rolled_up.open_overdue, 0)::integer as open_overdue,
        coalesce(rolled_up.due_soon, 0)::integer as due_within_one_working_day,
        -- working days from the oldest open overdue dossier's last on-time day to this day
        (days.working_day_number - last_on_time_day.working_day_number)::integer as overdue_max_working_days

    from units

    cross join days

    left join rolled_up
        on
            units.unit_code = rolled_up.unit_code
            and days.date_day = rolled_up.date_day

    left join calendar as last_on_time_day
        on rolled_up.oldest_overdue_from_date - 1 = last_on_time_day.date_day

)

select * from final
