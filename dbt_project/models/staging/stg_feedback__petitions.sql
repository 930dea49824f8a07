-- PAKN petitions (S3 /feedback): one row per petition version, typed and renamed.
with

petitions as (

    select * from {{ source('feedback', 'feedback') }}

),

renamed as (

    select
        ma_pakn as petition_code,
        ngay_cap_nhat as updated_at,
        ma_don_vi as unit_code,
        ma_don_vi_nguon as unit_code_as_sent,
        ma_ho_so as dossier_code,
        phan_loai as category,
        trang_thai as status,
        ngay_tiep_nhan as received_at,
        han_xu_ly as deadline_at,
        ngay_xu_ly as handled_at,
        so_luot_thich as likes,
        so_luot_khong_thich as dislikes,
        tiep_tuc_phan_anh as is_follow_up,
        run_id,
        loaded_at

    from petitions

)

select * from renamed
