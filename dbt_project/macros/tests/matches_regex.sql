{#- Rows whose value does not match the POSIX regular expression; nulls pass (use not_null for those). -#}
{% test matches_regex(model, column_name, pattern) %}

select *
from {{ model }}
where {{ column_name }} is not null and {{ column_name }}::text !~ '{{ pattern }}'

{% endtest %}
