-- The calendar 2024-01-01 .. 2027-12-31 with Vietnam's public holidays (seed vn_public_holidays) and
-- working days: Monday to Friday unless a day off, plus the Saturdays worked to make up for a bridge.
-- working_day_number counts working days from the calendar's start up to and including the day, so the
-- working days between two dates are a difference of two numbers.
with

holidays as (

    select * from {{ ref('vn_public_holidays') }}

),

days as (

    select day::date as date_day
    from generate_series('2024-01-01'::date, '2027-12-31'::date, interval '1 day') as s (day)

),

flagged as (

    select
        days.date_day,
        extract(isodow from days.date_day)::integer as iso_day_of_week,
        extract(isodow from days.date_day) in (6, 7) as is_weekend,
        coalesce(holidays.kind = 'day_off', false) as is_holiday,
        case when holidays.kind = 'day_off' then holidays.holiday_name_vi end as holiday_name_vi,
        case when holidays.kind = 'day_off' then holidays.holiday_name_en end as holiday_name_en,
        coalesce(holidays.kind = 'makeup_workday', false) as is_makeup_workday

    from days

    left join holidays
        on days.date_day = holidays.holiday_date

),

final as (

    select
        date_day,
        extract(year from date_day)::integer as year_number,
        extract(month from date_day)::integer as month_number,
        extract(day from date_day)::integer as day_of_month,
        {{ month_start('date_day') }} as month_start,
        ({{ month_start('date_day') }} + interval '1 month - 1 day')::date as month_end,
        date_day = ({{ month_start('date_day') }} + interval '1 month - 1 day')::date as is_month_end,
        iso_day_of_week,
        is_weekend,
        is_holiday,
        holiday_name_vi,
        holiday_name_en,
        is_makeup_workday,
        (not is_weekend and not is_holiday) or is_makeup_workday as is_working_day,
        sum(case when (not is_weekend and not is_holiday) or is_makeup_workday then 1 else 0 end)
            over (order by date_day)
        ::integer as working_day_number

    from flagged

)

select * from final
