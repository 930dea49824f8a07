{#- The score columns of a DVCQG service-results row: the loader's typed column, else the record's field. -#}
{% macro dvcqg_score_columns() -%}
    coalesce(total_score, {{ json_num("record ->> 'totalScore'") }})::numeric(7, 2) as total_score,
    coalesce(ratio, {{ json_num("record ->> 'ratio'") }})::numeric(7, 2) as ratio,
    coalesce(score_delta, {{ json_num("record ->> 'scoreDelta'") }})::numeric(7, 2) as score_delta,
    {%- for group in ["ckmb", "tdgq", "clgq", "tttt", "mdhl", "mdsh"] %}
    coalesce({{ group }}, {{ json_num("record -> 'groupScores' ->> '" ~ group | upper ~ "'") }})::numeric(7, 2)
        as {{ group }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
