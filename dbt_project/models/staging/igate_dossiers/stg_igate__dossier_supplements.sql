-- DanhSachHoSoBoSung[] of each dossier version: one row per supplement request, dates typed.
with

dossiers as (

    select
        ma_ho_so,
        ngay_cap_nhat,
        loaded_at,
        record -> 'DanhSachHoSoBoSung' as supplements

    from {{ source('igate', 'dossiers') }}

    where jsonb_typeof(record -> 'DanhSachHoSoBoSung') = 'array'

),

supplements as (

    select
        dossiers.ma_ho_so as dossier_code,
        dossiers.ngay_cap_nhat as updated_at,
        dossiers.loaded_at,
        item.supplement_no::integer as supplement_no,
        raw.local_ts(item.supplement ->> 'NgayYeuCauBoSung') as requested_at,
        raw.local_ts(item.supplement ->> 'NgayTiepNhanBoSung') as supplied_at,
        raw.local_ts(item.supplement ->> 'NgayHenTraTruoc') as previous_due_at,
        raw.local_ts(item.supplement ->> 'NgayHenTraMoi') as new_due_at

    from dossiers

    cross join lateral jsonb_array_elements(dossiers.supplements) with ordinality as item (supplement, supplement_no)

)

select * from supplements
