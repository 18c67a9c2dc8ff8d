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


{#- A refund that takes net revenue back: an order that was paid and not cancelled, then
    refunded. By order date it is simply no net revenue (the order's day is restated); by
    refund date it counts on its order date and is taken back on the day of the refund. -#}
{% macro is_refunded_revenue(relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    (
        {{ prefix }}paid_at is not null
        and {{ prefix }}cancelled_at is null
        and {{ prefix }}refunded_at is not null
    )
{%- endmacro %}
