-- How many ordering customers came back for a second order, and how many orders are
-- repeats, as the semantic layer defines them (models/marts/core/_core__metrics.yml,
-- through macros/metrics/): saved query repeat_customer_share.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

final as (

    select
        {{ shoplogs.metric_sql('ordering_customers') }} as customers,
        {{ shoplogs.metric_sql('repeat_customers') }} as repeat_customers,
        round({{ shoplogs.metric_sql('repeat_customer_share') }}, 4) as repeat_customer_share,
        {{ shoplogs.metric_sql('orders') }} as orders,
        {{ shoplogs.metric_sql('repeat_orders') }} as repeat_orders,
        round({{ shoplogs.metric_sql('repeat_order_share') }}, 4) as repeat_order_share

    from orders

)

select * from final
