{#- Rows where the column exceeds another column of the same row (for example a rank above the count). -#}
{% test not_greater_than_column(model, column_name, other_column) %}

select *
from {{ model }}
where {{ column_name }} > {{ other_column }}

{% endtest %}
