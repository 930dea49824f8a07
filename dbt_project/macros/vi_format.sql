{#- A number written the Vietnamese way (thousands '.', decimals ','), for reasons and legends the dashboard
    shows as text: to_char's ',' and '.' pattern characters are literal, then swapped. With trim, trailing
    zero decimals are dropped (98 -> '98', 97.5 -> '97,5'). -#}
{% macro vi_number(expr, decimals=0, trim=false) -%}
    {%- set pattern = 'FM999,999,990' ~ ('.' ~ ('9' if trim else '0') * decimals if decimals > 0 else '') -%}
    {%- if trim and decimals > 0 -%}
        translate(rtrim(to_char({{ expr }}, '{{ pattern }}'), '.'), ',.', '.,')
    {%- else -%}
        translate(to_char({{ expr }}, '{{ pattern }}'), ',.', '.,')
    {%- endif -%}
{%- endmacro %}

{#- A daily-operations indicator's value as text, by its display kind (seed kpi_thresholds): a 0..1 rate as
    a percentage with up to two decimals (the rates carry four), points with two decimals, a count whole. -#}
{% macro vi_indicator_value(value, display) -%}
    case {{ display }}
        when 'percent' then {{ vi_number('(' ~ value ~ ') * 100', 2, trim=true) }} || '%'
        when 'points' then {{ vi_number(value, 2) }}
        else {{ vi_number(value) }}
    end
{%- endmacro %}

{#- 'dưới' (below) for an indicator where higher is better, 'trên' (above) otherwise: the side that is worse. -#}
{% macro vi_worse_side(direction) -%}
    case {{ direction }} when 'higher_is_better' then 'dưới' else 'trên' end
{%- endmacro %}
