{#- The one revenue definition, for orders and their lines alike: an order counts as net
    revenue once paid, unless it was cancelled or refunded. `relation`, when given, names
    the CTE that holds paid_at, cancelled_at and refunded_at. -#}
{% macro is_net_revenue(relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    (
        {{ prefix }}paid_at is not null
        and {{ prefix }}cancelled_at is null
        and {{ prefix }}refunded_at is null
    )
{%- endmacro %}
