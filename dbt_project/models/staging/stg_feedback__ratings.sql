-- Satisfaction ratings (S3 /ratings): one row per rating version, typed and renamed.
with

ratings as (

    select * from {{ source('feedback', 'ratings') }}

),

renamed as (

    select
        ma_danh_gia as rating_code,
        ngay_cap_nhat as updated_at,
        ma_ho_so as dossier_code,
        ma_don_vi as unit_code,
        ma_don_vi_nguon as unit_code_as_sent,
        muc_do as satisfaction,
        ngay_danh_gia as rated_at,
        run_id,
        loaded_at

    from ratings

)

select * from renamed
