-- The pre-merger units each of today's communes was formed from (seed communes, Resolution 1660/NQ-UBTVQH15):
-- one row per (commune, pre-merger unit); a unit split between communes appears once per successor.
with

communes as (

    select * from {{ ref('communes') }}

),

units as (

    select * from {{ ref('stg_igate__units') }}

),

parts as (

    select
        communes.commune_code_2025 as commune_code,
        part.position::integer as predecessor_position,
        btrim(part.old_code) as predecessor_code,
        btrim(split_part(communes.merged_from_old_names, ';', part.position::integer)) as predecessor_name,
        btrim(split_part(communes.merge_types, ';', part.position::integer)) as merge_type

    from communes

    cross join
        lateral unnest(string_to_array(communes.merged_from_old_codes, ';'))
        with ordinality as part (old_code, position)

),

final as (

    select
        units.unit_code,
        parts.commune_code,
        parts.predecessor_position,
        parts.predecessor_code,
        parts.predecessor_name,
        parts.merge_type

    from parts

    inner join units
        on parts.commune_code = units.commune_code

)

select * from final
