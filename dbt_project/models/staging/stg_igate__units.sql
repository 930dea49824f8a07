-- The provincial dossier system's unit list (/units), typed and renamed.
with

units as (

    select * from {{ source('igate', 'units') }}

),

renamed as (

    select
        ma_don_vi as unit_code,
        ten_don_vi as unit_name,
        cap_don_vi as unit_level,
        ma_don_vi_cha as parent_unit_code,
        ma_hanh_chinh as commune_code,
        run_id,
        loaded_at

    from units

)

select * from renamed
