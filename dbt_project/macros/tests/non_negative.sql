{#- No row has a negative value in `column_name` (nulls pass: a field not logged). -#}
{% test non_negative(model, column_name) %}

select {{ column_name }}

from {{ model }}
where {{ column_name }} < 0

{% endtest %}
