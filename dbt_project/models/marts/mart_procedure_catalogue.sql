-- The province's procedure catalogue counted per implementing level (province / commune) and online level
-- (full / partial / none): published (in force), integrated with DVCQG, integrated as online services.
-- Every combination of the known levels has a row, with zeros when no procedure has it.
with

procedures as (

    select * from {{ ref('dim_procedure') }}

),

unit_levels as (

    select *
    from (
        values ('province', 'Cấp tỉnh', 1), ('commune', 'Cấp xã', 2)
    ) as levels (unit_level, unit_level_label, unit_level_order)

),

online_levels as (

    select *
    from (
        values ('full', 'Toàn trình', 1), ('partial', 'Một phần', 2), ('none', 'Không trực tuyến', 3)
    ) as levels (online_level, online_level_label, online_level_order)

),

counts as (

    select
        coalesce(unit_level, 'unknown') as unit_level,
        coalesce(online_level, 'unknown') as online_level,
        count(*) filter (where is_active) as procedures_published,
        count(*) filter (where is_active and is_integrated_with_dvcqg) as procedures_integrated,
        count(*) filter (
            where is_active and is_online and is_integrated_with_dvcqg
        ) as procedures_integrated_online,
        count(*) filter (where is_active and has_fees) as procedures_with_fees,
        count(*) filter (where not is_active) as procedures_repealed

    from procedures

    group by 1, 2

),

-- The known combinations, plus any level the catalogue sends that is not known (never dropped).
combinations as (

    select
        unit_levels.unit_level,
        online_levels.online_level

    from unit_levels

    cross join online_levels

    union

    select
        unit_level,
        online_level

    from counts

),

final as (

    select
        combinations.unit_level,
        coalesce(unit_levels.unit_level_label, 'Chưa xác định') as unit_level_label,
        coalesce(unit_levels.unit_level_order, 9) as unit_level_order,
        combinations.online_level,
        coalesce(online_levels.online_level_label, 'Chưa xác định') as online_level_label,
        coalesce(online_levels.online_level_order, 9) as online_level_order,
        coalesce(counts.procedures_published, 0)::integer as procedures_published,
        coalesce(counts.procedures_integrated, 0)::integer as procedures_integrated,
        coalesce(counts.procedures_integrated_online, 0)::integer as procedures_integrated_online,
        coalesce(counts.procedures_with_fees, 0)::integer as procedures_with_fees,
        coalesce(counts.procedures_repealed, 0)::integer as procedures_repealed,
        round(counts.procedures_integrated_online::numeric / nullif(counts.procedures_published, 0), 4)
            as integrated_online_share

    from combinations

    left join unit_levels
        on combinations.unit_level = unit_levels.unit_level

    left join online_levels
        on combinations.online_level = online_levels.online_level

    left join counts
        on
            combinations.unit_level = counts.unit_level
            and combinations.online_level = counts.online_level

)

select * from final
