-- Public administration service centres (S4 /centres), typed and renamed.
with

centres as (

    select * from {{ source('centres', 'centres') }}

),

renamed as (

    select
        ma_trung_tam as centre_code,
        ma_don_vi as unit_code,
        ma_don_vi_nguon as unit_code_as_sent,
        ten_trung_tam as centre_name,
        so_camera as cameras,
        so_quay as counters,
        run_id,
        loaded_at

    from centres

)

select * from renamed
