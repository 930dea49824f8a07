-- The home province's agencies and communes with their official DVCQG scores per period, ranked
-- among units of the same type (communes with communes, agencies with agencies; ties share a rank).
with

unit_scores as (

    select * from {{ ref('stg_dvcqg__unit_scores') }}

),

home_units as (

    select * from {{ ref('int_dvcqg__home_units') }}

),

ranked as (

    select
        unit_scores.period_type,
        unit_scores.period_start,
        unit_scores.department_id,
        home_units.unit_code,
        home_units.unit_name,
        home_units.unit_type,
        home_units.commune_code,
        unit_scores.total_score,
        unit_scores.ckmb,
        unit_scores.tdgq,
        unit_scores.clgq,
        unit_scores.tttt,
        unit_scores.mdhl,
        unit_scores.mdsh,
        case
            when unit_scores.total_score is not null
                then rank() over (
                    partition by unit_scores.period_type, unit_scores.period_start, home_units.unit_type
                    order by unit_scores.total_score desc nulls last
                )
        end as rank_in_type,
        count(*) over (
            partition by unit_scores.period_type, unit_scores.period_start, home_units.unit_type
        ) as units_in_type

    from unit_scores

    inner join home_units
        on
            unit_scores.root_department_id = home_units.root_department_id
            and unit_scores.department_id = home_units.department_id

),

final as (

    select
        cur.period_type,
        cur.period_start,
        {{ period_label('cur.period_type', 'cur.period_start') }} as period_label,
        cur.department_id,
        cur.unit_code,
        cur.unit_name,
        cur.unit_type,
        cur.commune_code,
        cur.total_score,
        cur.ckmb,
        cur.tdgq,
        cur.clgq,
        cur.tttt,
        cur.mdhl,
        cur.mdsh,
        cur.rank_in_type::integer as rank_in_type,
        cur.units_in_type::integer as units_in_type,
        prev.total_score as previous_total_score,
        (cur.total_score - prev.total_score)::numeric(7, 2) as score_change

    from ranked as cur

    left join ranked as prev
        on
            cur.department_id = prev.department_id
            and cur.period_type = prev.period_type
            and prev.period_start = {{ previous_period_start('cur.period_type', 'cur.period_start') }}

)

select * from final
