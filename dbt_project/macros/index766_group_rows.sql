{#- The six group-score columns of a wide index row as rows (group_order, group_code, score), for
    `cross join lateral {{ index766_group_rows('alias') }} as groups (group_order, group_code, score)`.
    The order is the columns of DVCQG's national table. -#}
{% macro index766_group_rows(alias) -%}
    (
        values
        {%- for group in ["ckmb", "tdgq", "clgq", "tttt", "mdhl", "mdsh"] %}
        ({{ loop.index }}, '{{ group | upper }}', {{ alias }}.{{ group }}){{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}
