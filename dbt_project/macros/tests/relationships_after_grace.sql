{#- Like `relationships`, for keys that may arrive late: a row counts as failing only once
    its `date_column` lies more than `grace_days` before the newest `date_column` in the
    model. Paired with a `relationships` test at severity warn, a missing parent warns at
    once and fails the build after the grace period. The newest date in the data, not the
    clock, measures age, so a re-run gives the same verdict. -#}
{% test relationships_after_grace(model, column_name, to, field, date_column, grace_days) %}

with

children as (

    select * from {{ model }}

),

parents as (

    select {{ field }} as parent_key from {{ to }}

),

newest as (

    select max({{ date_column }}) as newest_date from children

)

select children.*
from children
cross join newest
left join parents
    on children.{{ column_name }} = parents.parent_key
where
    children.{{ column_name }} is not null
    and parents.parent_key is null
    and children.{{ date_column }}
    < {{ dbt.dateadd('day', -1 * grace_days, 'newest.newest_date') }}

{% endtest %}
