-- The documents of each dossier version: the files submitted (TaiLieuNop[], kind 'submitted') and the
-- result papers (DanhSachGiayToKetQua[], kind 'result'). Only flags and ids are kept: file names, paper
-- names and result links are written by or about the applicant and may name them, so they are dropped.
with

-- not materialized: inlined into both branches, so a filter on dossier_code from a model reading this
-- view reaches raw.dossiers' primary key instead of a scan of every version
dossiers as not materialized (

    select
        ma_ho_so,
        ngay_cap_nhat,
        loaded_at,
        record

    from {{ source('igate', 'dossiers') }}

),

submitted as (

    select
        dossiers.ma_ho_so as dossier_code,
        dossiers.ngay_cap_nhat as updated_at,
        dossiers.loaded_at,
        'submitted' as document_kind,
        item.document_no::integer as document_no,
        nullif(item.document ->> 'TepDinhKemId', '') as file_id,
        raw.int_or_null(item.document ->> 'DuocSoHoa') = 1 as is_digitised,
        raw.int_or_null(item.document ->> 'DuocLayTuKhoDMQG') = 1 as is_from_national_repository,
        null::boolean as has_result_file

    from dossiers

    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(dossiers.record -> 'TaiLieuNop') = 'array' then dossiers.record -> 'TaiLieuNop' end
    ) with ordinality as item (document, document_no)

),

results as (

    select
        dossiers.ma_ho_so as dossier_code,
        dossiers.ngay_cap_nhat as updated_at,
        dossiers.loaded_at,
        'result' as document_kind,
        item.document_no::integer as document_no,
        null::text as file_id,
        null::boolean as is_digitised,
        null::boolean as is_from_national_repository,
        coalesce(item.document ->> 'DuongDanTepTinKetQua', '') != '' as has_result_file

    from dossiers

    cross join lateral jsonb_array_elements(
        case
            when jsonb_typeof(dossiers.record -> 'DanhSachGiayToKetQua') = 'array'
                then dossiers.record -> 'DanhSachGiayToKetQua'
        end
    ) with ordinality as item (document, document_no)

)

select * from submitted
union all
select * from results
