-- The province's procedure catalogue (S2 /procedures) with the attributes the service index needs.
with

procedures as (

    select * from {{ ref('stg_igate__procedures') }}

),

final as (

    select
        procedure_code,
        procedure_name,
        field_code,
        field_name,
        implementation_level,
        case implementation_level when 'TINH' then 'province' when 'XA' then 'commune' end as unit_level,
        case online_level
            when 'TOAN_TRINH' then 'full'
            when 'MOT_PHAN' then 'partial'
            when 'KHONG' then 'none'
        end as online_level,
        coalesce(online_level in ('TOAN_TRINH', 'MOT_PHAN'), false) as is_online,
        coalesce(integrated_with_dvcqg, false) as is_integrated_with_dvcqg,
        coalesce(has_fees, false) as has_fees,
        coalesce(requires_paper_result, false) as requires_paper_result,
        processing_days as legal_processing_working_days,
        published_at,
        procedure_status,
        coalesce(procedure_status = 'HIEU_LUC', false) as is_active

    from procedures

)

select * from final
