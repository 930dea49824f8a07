-- DanhSachLePhi[] of each dossier version: one row per fee or charge, the amount in VND.
with

dossiers as (

    select
        ma_ho_so,
        ngay_cap_nhat,
        loaded_at,
        record -> 'DanhSachLePhi' as fees

    from {{ source('igate', 'dossiers') }}

    where jsonb_typeof(record -> 'DanhSachLePhi') = 'array'

),

fees as (

    select
        dossiers.ma_ho_so as dossier_code,
        dossiers.ngay_cap_nhat as updated_at,
        dossiers.loaded_at,
        item.fee_no::integer as fee_no,
        nullif(item.fee ->> 'MaPhiLePhi', '') as fee_code,
        nullif(item.fee ->> 'TenPhiLePhi', '') as fee_name,
        case when item.fee ->> 'Gia' ~ '^\d{1,15}(\.\d+)?$' then (item.fee ->> 'Gia')::numeric end as amount_vnd

    from dossiers

    cross join lateral jsonb_array_elements(dossiers.fees) with ordinality as item (fee, fee_no)

)

select * from fees
