-- Known days of the calendar: Tết 2025 and 2026 off, a make-up Saturday worked, an ordinary Saturday off,
-- National Day 2024 (+1) off; working_day_number moves only on working days.
with

dim_date as (

    select * from {{ ref('dim_date') }}

),

expected as (

    select *
    from (
        values
        ('2025-01-24'::date, true),
        ('2025-01-29'::date, false),
        ('2025-02-03'::date, true),
        ('2025-04-26'::date, true),
        ('2025-04-19'::date, false),
        ('2024-09-03'::date, false),
        ('2026-02-17'::date, false),
        ('2026-02-23'::date, true)
    ) as e (date_day, is_working_day)

),

wrong_flags as (

    select expected.date_day
    from expected
    left join dim_date on expected.date_day = dim_date.date_day
    where dim_date.is_working_day is distinct from expected.is_working_day

),

wrong_numbers as (

    select date_day
    from (
        select
            date_day,
            is_working_day,
            working_day_number - lag(working_day_number, 1, 0) over (order by date_day) as step
        from dim_date
    ) as steps
    where step != case when is_working_day then 1 else 0 end

)

select date_day from wrong_flags
union all
select date_day from wrong_numbers
