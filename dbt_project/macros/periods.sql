{#- 'YYYY-MM' for months, 'YYYY-Qn' for quarters, 'YYYY' for years. -#}
{% macro period_label(period_type, period_start) -%}
    case {{ period_type }}
        when 'month' then to_char({{ period_start }}, 'YYYY-MM')
        when 'quarter' then to_char({{ period_start }}, 'YYYY-"Q"Q')
        when 'year' then to_char({{ period_start }}, 'YYYY')
    end
{%- endmacro %}

{#- The start of the period before, of the same type. -#}
{% macro previous_period_start(period_type, period_start) -%}
    (
        {{ period_start }} - case {{ period_type }}
            when 'month' then interval '1 month'
            when 'quarter' then interval '3 months'
            when 'year' then interval '1 year'
        end
    )::date
{%- endmacro %}
