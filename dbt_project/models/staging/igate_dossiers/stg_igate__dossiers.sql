-- One row per dossier version, typed and renamed. The personal fields (ChuHoSo, MaDoiTuong, SoDienThoai,
-- Email) are never named here: the transform role cannot read those raw columns, and record no longer
-- holds them. applicant_hash (salted at load) is the only trace of the applicant.
with

dossiers as (

    select
        ma_ho_so,
        ngay_cap_nhat,
        ma_tthc,
        ma_linh_vuc,
        ma_don_vi,
        ma_don_vi_nguon,
        kenh_thuc_hien,
        loai_doi_tuong,
        trang_thai,
        ngay_nop_ho_so,
        ngay_tiep_nhan,
        ngay_hen_tra,
        ngay_ket_thuc_xu_ly,
        ngay_tra,
        duoc_thanh_toan_truc_tuyen,
        applicant_hash,
        record,
        run_id,
        loaded_at

    from {{ source('igate', 'dossiers') }}

),

renamed as (

    select
        ma_ho_so as dossier_code,
        ngay_cap_nhat as updated_at,
        -- the national procedure code; dossiers may carry its local form '<code>.000.00.00.H15'
        regexp_replace(ma_tthc, '\.000\.00\.00\.H\d{2}$', '') as procedure_code,
        ma_tthc as procedure_code_as_sent,
        nullif(record ->> 'TenTTHC', '') as procedure_name,
        ma_linh_vuc as field_code,
        nullif(record ->> 'TenLinhVuc', '') as field_name,
        ma_don_vi as unit_code,
        ma_don_vi_nguon as unit_code_as_sent,
        nullif(record ->> 'DonViXuLy', '') as handling_unit_name,
        kenh_thuc_hien as channel,
        loai_doi_tuong as applicant_type,
        applicant_hash,
        trang_thai as status,
        ngay_nop_ho_so as submitted_at,
        ngay_tiep_nhan as received_at,
        ngay_hen_tra as due_at,
        ngay_ket_thuc_xu_ly as finished_at,
        ngay_tra as returned_at,
        duoc_thanh_toan_truc_tuyen as online_payment,
        raw.int_or_null(record ->> 'TaiKhoanDuocXacThucVoiVNeID') = 1 as vneid_verified,
        coalesce(jsonb_array_length(
            case when jsonb_typeof(record -> 'DanhSachHoSoBoSung') = 'array' then record -> 'DanhSachHoSoBoSung' end
        ), 0) as supplement_count,
        coalesce(jsonb_array_length(
            case when jsonb_typeof(record -> 'DanhSachLePhi') = 'array' then record -> 'DanhSachLePhi' end
        ), 0) as fee_count,
        run_id,
        loaded_at

    from dossiers

)

select * from renamed
