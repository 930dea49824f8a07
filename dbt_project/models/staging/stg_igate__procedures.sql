-- The province's procedure catalogue (/procedures), typed and renamed.
with

procedures as (

    select * from {{ source('igate', 'procedures') }}

),

renamed as (

    select
        ma_tthc as procedure_code,
        ten_tthc as procedure_name,
        ma_linh_vuc as field_code,
        nullif(record ->> 'TenLinhVuc', '') as field_name,
        cap_thuc_hien as implementation_level,
        muc_do_dvc as online_level,
        tich_hop_dvcqg as integrated_with_dvcqg,
        co_phi_le_phi as has_fees,
        case jsonb_typeof(record -> 'YeuCauKetQuaGiay')
            when 'boolean' then (record ->> 'YeuCauKetQuaGiay')::boolean
        end as requires_paper_result,
        thoi_han_giai_quyet_ngay as processing_days,
        ngay_cong_bo as published_at,
        trang_thai as procedure_status,
        run_id,
        loaded_at

    from procedures

)

select * from renamed
