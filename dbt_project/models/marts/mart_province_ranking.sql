-- The national table: every province per period, ranked by total (ties share a rank), against the
-- national average and the previous period of the same type.
with

province_scores as (

    select * from {{ ref('stg_dvcqg__province_scores') }}

),

provinces as (

    select * from {{ ref('provinces') }}

),

ranked as (

    select
        province_scores.period_type,
        province_scores.period_start,
        province_scores.department_id,
        province_scores.department_code,
        provinces.province_code_2025 as province_code,
        coalesce(
            provinces.province_name_2025, regexp_replace(province_scores.department_name, '^UBND\s+', '')
        ) as province_name,
        coalesce(province_scores.department_code = '{{ var("home_province_dvcqg_code") }}', false)
            as is_home_province,
        province_scores.total_score,
        province_scores.ckmb,
        province_scores.tdgq,
        province_scores.clgq,
        province_scores.tttt,
        province_scores.mdhl,
        province_scores.mdsh,
        case
            when province_scores.total_score is not null
                then rank() over (
                    partition by province_scores.period_type, province_scores.period_start
                    order by province_scores.total_score desc nulls last
                )
        end as national_rank,
        avg(province_scores.total_score) over (
            partition by province_scores.period_type, province_scores.period_start
        ) as national_average

    from province_scores

    left join provinces
        on province_scores.department_code = provinces.dvcqg_departmentcode

),

final as (

    select
        cur.period_type,
        cur.period_start,
        {{ period_label('cur.period_type', 'cur.period_start') }} as period_label,
        cur.department_id,
        cur.department_code,
        cur.province_code,
        cur.province_name,
        cur.is_home_province,
        cur.total_score,
        cur.ckmb,
        cur.tdgq,
        cur.clgq,
        cur.tttt,
        cur.mdhl,
        cur.mdsh,
        cur.national_rank::integer as national_rank,
        round(cur.national_average, 2)::numeric(7, 2) as national_average,
        prev.total_score as previous_total_score,
        (cur.total_score - prev.total_score)::numeric(7, 2) as score_change,
        prev.national_rank::integer as previous_rank,
        (prev.national_rank - cur.national_rank)::integer as rank_change

    from ranked as cur

    left join ranked as prev
        on
            cur.department_code = prev.department_code
            and cur.period_type = prev.period_type
            and prev.period_start = {{ previous_period_start('cur.period_type', 'cur.period_start') }}

)

select * from final
