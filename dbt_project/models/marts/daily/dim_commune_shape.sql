-- The communes' boundaries as SVG paths (seed commune_map_shapes, generated from the reference GeoJSON by
-- scripts/commune_map_shapes.py) with their unit in dim_unit: what the daily-operations map draws, no tiles.
with

shapes as (

    select * from {{ ref('commune_map_shapes') }}

),

units as (

    select * from {{ ref('dim_unit') }}

),

final as (

    select
        shapes.commune_code,
        units.unit_code,
        units.unit_name,
        shapes.svg_path,
        shapes.view_box

    from shapes

    left join units
        on
            shapes.commune_code = units.statistics_code
            and units.unit_type = 'commune'

)

select * from final
