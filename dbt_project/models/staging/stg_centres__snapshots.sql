-- Hourly centre snapshots (S4 /centres/snapshots): one row per centre and hour observed. A missing hour
-- (the centre was offline) has no row; nothing is filled in.
with

snapshots as (

    select * from {{ source('centres', 'centre_snapshots') }}

),

renamed as (

    select
        ma_trung_tam as centre_code,
        thoi_diem as observed_at,
        camera_truc_tuyen as cameras_online,
        quay_hoat_dong as counters_open,
        so_phieu_cap as tickets_issued,
        thoi_gian_cho_tb as mean_wait_minutes,
        thoi_gian_cho_max as max_wait_minutes,
        run_id,
        loaded_at

    from snapshots

)

select * from renamed
