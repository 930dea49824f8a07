with

group_details as (

    select * from {{ source('dvcqg', 'dvcqg_group_details') }}

),

-- transparency, dossier-digitized, handling-satisfaction: each row lists its metrics[]
listed as (

    select
        gd.endpoint,
        gd.group_code,
        gd.period_type,
        gd.period_start,
        gd.root_department_id,
        gd.department_id,
        gd.department_code,
        gd.is_parent,
        m.metric ->> 'code' as metric_code,
        normalize(m.metric ->> 'name') as metric_name,
        {{ json_num("m.metric ->> 'numerator'") }} as numerator,
        {{ json_num("m.metric ->> 'denominator'") }} as denominator,
        {{ json_num("m.metric ->> 'ratio'") }} as ratio,
        {{ json_num("m.metric ->> 'score'") }} as score,
        {{ json_num("m.metric ->> 'maxScore'") }} as max_score,
        null::numeric as metric_value,
        nullif(m.metric ->> 'dataQualityStatus', '') as data_quality_status,
        gd.loaded_at

    from group_details as gd

    cross join lateral jsonb_array_elements(gd.record -> 'metrics') as m (metric)

    where
        gd.group_code not in ('TDGQ', 'CLGQ', 'TTTT')
        and jsonb_typeof(gd.record -> 'metrics') = 'array'

),

-- the tree endpoints (dvc-progress-tree, provide-online-tree, formality-online-payment-tree) give counts
tree_rows as (

    select
        endpoint,
        group_code,
        period_type,
        period_start,
        root_department_id,
        department_id,
        department_code,
        is_parent,
        loaded_at,
        {{ json_num("record ->> 'totalReceived'") }} as total_received,
        {{ json_num("record ->> 'totalOnTime'") }} as total_on_time,
        {{ json_num("record ->> 'totalOverdue'") }} as total_overdue,
        {{ json_num("record ->> 'totalCompleted'") }} as total_completed,
        {{ json_num("record ->> 'avgProcessingDays'") }} as avg_processing_days,
        {{ json_num("record ->> 'ratio'") }} as group_ratio,
        coalesce(score, {{ json_num("record ->> 'score'") }}, {{ json_num("record ->> 'totalScore'") }})
            as group_score,
        coalesce(max_score, {{ json_num("record ->> 'maxScore'") }}, {{ json_num("record ->> 'totalMaxScore'") }})
            as group_max_score,
        {{ json_num("record ->> 'partialCount'") }} + {{ json_num("record ->> 'fullCount'") }} as online_offered,
        {{ json_num("record ->> 'authorityCount'") }} as authority_count,
        {{ json_num("record ->> 'onlineDossierCount'") }} as online_dossier_count,
        {{ json_num("record ->> 'onlineServiceTotal'") }} as online_service_total,
        {{ json_num("record ->> 'channelOnlineSum'") }} as channel_online_sum,
        {{ json_num("record ->> 'channelTotalSum'") }} as channel_total_sum,
        {{ json_num("record ->> 'totalDossierOnlinePaymentSuccess'") }} as dossiers_paid_online,
        {{ json_num("record ->> 'totalDossierFinancialObligation'") }} as dossiers_with_fees,
        {{ json_num("record ->> 'totalDossierOnlineFormalityPaymentSuccess'") }} as formalities_paid_online,
        {{ json_num("record ->> 'totalFeeDossierFormality'") }} as formalities_integrated,
        {{ json_num("record ->> 'totalFeeFormality'") }} as fee_formalities,
        case when jsonb_typeof(record -> 'metrics') = 'array' then record -> 'metrics' else '[]'::jsonb end
            as metrics

    from group_details

    where group_code in ('TDGQ', 'CLGQ', 'TTTT')

),

-- one row per index ratio; a component score is taken from metrics[] when a row lists one (by api_code)
tree as (

    select
        t.endpoint,
        t.group_code,
        t.period_type,
        t.period_start,
        t.root_department_id,
        t.department_id,
        t.department_code,
        t.is_parent,
        c.metric_code,
        c.metric_name,
        c.numerator,
        c.denominator,
        coalesce(c.given_ratio, round(100.0 * c.numerator / nullif(c.denominator, 0), 2)) as ratio,
        coalesce(c.given_score, {{ json_num("published.metric ->> 'score'") }}) as score,
        c.max_score,
        c.metric_value,
        null::text as data_quality_status,
        t.loaded_at

    from tree_rows as t

    cross join
        lateral (
            values
            (
                'TDGQ', 'ON_TIME', 'totalOnTime/totalReceived', 'Hồ sơ xử lý đúng hạn, trước hạn',
                t.total_on_time, t.total_received, t.group_ratio, t.group_score, t.group_max_score, null::numeric
            ),
            (
                'TDGQ', 'OVERDUE', null, 'Hồ sơ quá hạn',
                t.total_overdue, t.total_received, null, null, 0, null
            ),
            (
                'TDGQ', 'COMPLETED', null, 'Hồ sơ đã giải quyết',
                t.total_completed, t.total_received, null, null, 0, null
            ),
            (
                'TDGQ', 'AVG_PROCESSING_DAYS', null, 'Thời gian giải quyết trung bình (ngày)',
                null, null, null, null, 0, t.avg_processing_days
            ),
            (
                'CLGQ', 'ONLINE_PROVISION', 'A', 'TTHC cung cấp DVCTT một phần, toàn trình',
                t.online_offered, t.authority_count, null, null, 2, null
            ),
            (
                'CLGQ', 'ONLINE_SERVICE_USED', 'B', 'DVCTT có phát sinh hồ sơ trực tuyến',
                t.online_dossier_count, t.online_service_total, null, null, 4, null
            ),
            (
                'CLGQ', 'ONLINE_SUBMISSION', 'C', 'Hồ sơ nộp trực tuyến',
                t.channel_online_sum, t.channel_total_sum, null, null, 6, null
            ),
            (
                'TTTT', 'ONLINE_PAYMENT_DOSSIER', 'A', 'Hồ sơ thanh toán trực tuyến',
                t.dossiers_paid_online, t.dossiers_with_fees, null, null, 6, null
            ),
            (
                'TTTT', 'ONLINE_PAYMENT_FORMALITY', 'B', 'TTHC có giao dịch thanh toán trực tuyến',
                t.formalities_paid_online, t.fee_formalities, null, null, 2, null
            ),
            (
                'TTTT', 'FEE_FORMALITY_INTEGRATED', 'C', 'TTHC có phí tích hợp thanh toán trên Cổng DVCQG',
                t.formalities_integrated, t.fee_formalities, null, null, 2, null
            )
        )
            as c (
                group_code, metric_code, api_code, metric_name, numerator, denominator, given_ratio, given_score,
                max_score, metric_value
            )

    left join lateral (
        select m.metric
        from jsonb_array_elements(t.metrics) with ordinality as m (metric, position)
        where m.metric ->> 'code' = c.api_code
        order by m.position
        limit 1
    ) as published on true

    where c.group_code = t.group_code

),

unioned as (

    select * from listed
    union all
    select * from tree

)

select * from unioned
