{#- The local (Asia/Ho_Chi_Minh) calendar date of a timestamptz. -#}
{% macro local_date(ts) -%}
    ({{ ts }} at time zone 'Asia/Ho_Chi_Minh')::date
{%- endmacro %}

{#- The first day of the local month of a date. -#}
{% macro month_start(d) -%}
    date_trunc('month', {{ d }})::date
{%- endmacro %}
