{#- A fact row whose key still points at the unknown member (`unknown_key`) although its
    parent has arrived (its `id_column` is in `to`.`field`), once its `date_column` lies more
    than `grace_days` before the newest one: the run that brought the parent should have
    re-keyed it. The newest date in the data, not the clock, measures age. -#}
{% test keyed_after_grace(
    model, column_name, unknown_key, id_column, to, field, date_column, grace_days
) %}

with

children as (

    select * from {{ model }}

),

parents as (

    select {{ field }} as parent_id from {{ to }}
    where {{ field }} != '{{ unknown_key }}'

),

newest as (

    select max({{ date_column }}) as newest_date from children

)

select children.*
from children
cross join newest
where
    children.{{ column_name }} = '{{ unknown_key }}'
    and children.{{ id_column }} in (select parent_id from parents)
    and children.{{ date_column }}
    < {{ dbt.dateadd('day', -1 * grace_days, 'newest.newest_date') }}

{% endtest %}
