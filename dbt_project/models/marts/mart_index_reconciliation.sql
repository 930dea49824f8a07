-- chiso's service-index group scores of the home province's agencies and communes against DVCQG's official
-- ones, per unit, month and group: both figures, the difference and whether it is beyond the group's
-- tolerance (seed index766_reconciliation_rules, else var index766_reconciliation_tolerance). chiso's side
-- is the final figure of a month (as of its last day); the months are those both sides publish.
with

computed as (

    select * from {{ ref('mart_unit_index_766') }}

),

official as (

    select * from {{ ref('mart_unit_official_scores') }}

),

rules as (

    select * from {{ ref('index766_reconciliation_rules') }}

),

index_groups as (

    select * from {{ ref('index766_groups') }}

),

computed_final as (

    select * from computed
    where is_final and unit_type in ('agency', 'commune')

),

official_months as (

    select * from official
    where period_type = 'month'

),

-- months chiso has final figures for and DVCQG has published
months as (

    select period_start from computed_final
    intersect
    select period_start from official_months

),

computed_long as (

    select
        computed_final.unit_code,
        computed_final.unit_name,
        computed_final.unit_type,
        computed_final.period_start,
        score_row.group_code,
        score_row.score

    from computed_final

    inner join months
        on computed_final.period_start = months.period_start

    cross join lateral {{ index766_group_rows('computed_final') }} as score_row (group_order, group_code, score)

),

official_long as (

    select
        official_months.unit_code,
        official_months.unit_name,
        official_months.unit_type,
        official_months.period_start,
        score_row.group_code,
        score_row.score

    from official_months

    inner join months
        on official_months.period_start = months.period_start

    cross join lateral {{ index766_group_rows('official_months') }} as score_row (group_order, group_code, score)

),

paired as (

    select
        coalesce(computed_long.unit_code, official_long.unit_code) as unit_code,
        coalesce(computed_long.unit_name, official_long.unit_name) as unit_name,
        coalesce(computed_long.unit_type, official_long.unit_type) as unit_type,
        coalesce(computed_long.period_start, official_long.period_start) as period_start,
        coalesce(computed_long.group_code, official_long.group_code) as group_code,
        computed_long.unit_code is not null as has_chiso_row,
        official_long.unit_code is not null as has_official_row,
        computed_long.score as chiso_score,
        official_long.score as official_score

    from computed_long

    full outer join official_long
        on
            computed_long.unit_code = official_long.unit_code
            and computed_long.period_start = official_long.period_start
            and computed_long.group_code = official_long.group_code

),

judged as (

    select
        paired.*,
        index_groups.group_name_vi as group_name,
        index_groups.max_score as max_points,
        coalesce(rules.is_compared, true) as is_compared,
        coalesce(rules.tolerance_points, {{ var('index766_reconciliation_tolerance') }}) as tolerance_points,
        paired.chiso_score - paired.official_score as score_difference

    from paired

    inner join index_groups
        on paired.group_code = index_groups.group_code

    left join rules
        on paired.group_code = rules.group_code

),

statuses as (

    select
        *,
        case
            when chiso_score is null and official_score is null then 'not_applicable'
            when official_score is null then 'missing_official'
            when chiso_score is null then 'missing_chiso'
            when not is_compared then 'not_compared'
            when abs(score_difference) > tolerance_points then 'beyond_tolerance'
            else 'within_tolerance'
        end as reconciliation_status

    from judged

),

final as (

    select
        unit_code,
        unit_name,
        unit_type,
        period_start,
        to_char(period_start, 'YYYY-MM') as period_label,
        group_code,
        group_name,
        max_points::numeric(7, 2) as max_points,
        chiso_score::numeric(7, 2) as chiso_score,
        official_score::numeric(7, 2) as official_score,
        score_difference::numeric(7, 2) as score_difference,
        abs(score_difference)::numeric(7, 2) as absolute_difference,
        tolerance_points::numeric(7, 2) as tolerance_points,
        is_compared,
        reconciliation_status,
        case reconciliation_status
            when 'within_tolerance' then 'Khớp'
            when 'beyond_tolerance' then 'Lệch quá ngưỡng'
            when 'missing_official' then 'Thiếu số liệu DVCQG'
            when 'missing_chiso' then 'Thiếu số liệu chiso'
            when 'not_compared' then 'Không đối chiếu'
            when 'not_applicable' then 'Không áp dụng'
        end as reconciliation_label,
        reconciliation_status = 'beyond_tolerance' as is_beyond_tolerance,
        has_chiso_row,
        has_official_row

    from statuses

)

select * from final
