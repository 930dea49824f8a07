{%- set r = "gd.record" -%}
with

group_details as (

    select * from {{ source('dvcqg', 'dvcqg_group_details') }}

),

-- transparency, dossier-digitized, handling-satisfaction: each row carries metrics[]
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

    where jsonb_typeof(gd.record -> 'metrics') = 'array'

),

-- the tree endpoints (TDGQ, CLGQ, TTTT) give counts; each index ratio becomes one metric row
tree as (

    select
        gd.endpoint,
        gd.group_code,
        gd.period_type,
        gd.period_start,
        gd.root_department_id,
        gd.department_id,
        gd.department_code,
        gd.is_parent,
        c.metric_code,
        c.metric_name,
        c.numerator,
        c.denominator,
        coalesce(c.given_ratio, round(100.0 * c.numerator / nullif(c.denominator, 0), 2)) as ratio,
        c.score,
        c.max_score,
        c.metric_value,
        null::text as data_quality_status,
        gd.loaded_at

    from group_details as gd

    cross join
        lateral (
            values
            (
                'TDGQ', 'ON_TIME', 'Hồ sơ xử lý đúng hạn, trước hạn (gồm đang xử lý trong hạn)',
                {{ json_num(r ~ " ->> 'totalOnTime'") }}, {{ json_num(r ~ " ->> 'totalReceived'") }},
                {{ json_num(r ~ " ->> 'ratio'") }},
                coalesce(gd.score, {{ json_num(r ~ " ->> 'score'") }}, {{ json_num(r ~ " ->> 'totalScore'") }}),
                coalesce(
                    gd.max_score, {{ json_num(r ~ " ->> 'maxScore'") }}, {{ json_num(r ~ " ->> 'totalMaxScore'") }}
                ),
                null::numeric
            ),
            (
                'TDGQ', 'OVERDUE', 'Hồ sơ quá hạn',
                {{ json_num(r ~ " ->> 'totalOverdue'") }}, {{ json_num(r ~ " ->> 'totalReceived'") }},
                null, null, 0, null
            ),
            (
                'TDGQ', 'COMPLETED', 'Hồ sơ đã giải quyết xong',
                {{ json_num(r ~ " ->> 'totalCompleted'") }}, {{ json_num(r ~ " ->> 'totalReceived'") }},
                null, null, 0, null
            ),
            (
                'TDGQ', 'AVG_PROCESSING_DAYS', 'Thời gian giải quyết trung bình (ngày)',
                null, null, null, null, 0, {{ json_num(r ~ " ->> 'avgProcessingDays'") }}
            ),
            (
                'CLGQ', 'ONLINE_PROVISION', 'TTHC cung cấp DVCTT (một phần + toàn trình) / TTHC thuộc thẩm quyền',
                {{ json_num(r ~ " ->> 'partialCount'") }} + {{ json_num(r ~ " ->> 'fullCount'") }},
                {{ json_num(r ~ " ->> 'authorityCount'") }},
                null, null, 2, null
            ),
            (
                'CLGQ', 'ONLINE_SERVICE_USED', 'DVCTT có phát sinh hồ sơ trực tuyến / DVC của TTHC',
                {{ json_num(r ~ " ->> 'onlineDossierCount'") }}, {{ json_num(r ~ " ->> 'onlineServiceTotal'") }},
                null, null, 4, null
            ),
            (
                'CLGQ', 'ONLINE_SUBMISSION', 'Hồ sơ nộp trực tuyến / tổng hồ sơ tiếp nhận',
                {{ json_num(r ~ " ->> 'channelOnlineSum'") }}, {{ json_num(r ~ " ->> 'channelTotalSum'") }},
                null, null, 6, null
            ),
            (
                'TTTT', 'ONLINE_PAYMENT_DOSSIER', 'Hồ sơ thanh toán trực tuyến / hồ sơ có phí, lệ phí',
                {{ json_num(r ~ " ->> 'totalDossierOnlinePaymentSuccess'") }},
                {{ json_num(r ~ " ->> 'totalDossierFinancialObligation'") }},
                null, null, 6, null
            ),
            (
                'TTTT', 'ONLINE_PAYMENT_FORMALITY', 'TTHC có giao dịch thanh toán trực tuyến / TTHC có phí',
                {{ json_num(r ~ " ->> 'totalDossierOnlineFormalityPaymentSuccess'") }},
                {{ json_num(r ~ " ->> 'totalFeeFormality'") }},
                null, null, 2, null
            ),
            (
                'TTTT', 'FEE_FORMALITY_INTEGRATED', 'TTHC có phí tích hợp thanh toán trên Cổng DVCQG / TTHC có phí',
                {{ json_num(r ~ " ->> 'totalFeeDossierFormality'") }}, {{ json_num(r ~ " ->> 'totalFeeFormality'") }},
                null, null, 2, null
            )
        )
            as c (
                group_code,
                metric_code,
                metric_name,
                numerator,
                denominator,
                given_ratio,
                score,
                max_score,
                metric_value
            )

    where
        c.group_code = gd.group_code
        and jsonb_typeof(gd.record -> 'metrics') is distinct from 'array'

),

unioned as (

    select * from listed
    union all
    select * from tree

)

select * from unioned
