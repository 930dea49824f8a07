-- mart_centre_operations has a row for every centre of S4 /centres on every day between its first and
-- last day (no day missing for any centre): returns a row when the count differs.
with

operations as (

    select * from {{ ref('mart_centre_operations') }}

),

centres as (

    select * from {{ ref('stg_centres__centres') }}

),

window_days as (

    select max(local_date) - min(local_date) + 1 as day_count
    from operations

),

counts as (

    select
        (select count(*) from operations) as actual_rows,
        (select count(*) from centres) * window_days.day_count as expected_rows

    from window_days

)

select * from counts
where actual_rows != expected_rows
