{#- A unit name reduced to a matching key: NFC, lower case, no 'UBND ', no 'xã '/'phường '/'đặc khu '
    prefix, no ' - Tỉnh ...' suffix, no diacritics (NFD then combining marks removed, đ -> d), single spaces. -#}
{% macro unit_name_key(name) -%}
    nullif(btrim(regexp_replace(translate(regexp_replace(normalize(regexp_replace(regexp_replace(
        lower(normalize({{ name }}, nfc)),
        '\s+-\s+.*$', ''),
        '^\s*(ubnd\s+)?(xã|phường|đặc khu)\s+', ''),
        nfd), '[\u0300-\u036f]', '', 'g'), 'đ', 'd'), '\s+', ' ', 'g')), '')
{%- endmacro %}

{#- A number from a JSON field; "" and null both mean no value. -#}
{% macro json_num(json_expr) -%}
    nullif({{ json_expr }}, '')::numeric
{%- endmacro %}
