-- One row per customer who ordered: first order, orders placed and lifetime net revenue.
with

orders as (

    select * from {{ ref('int_orders_statuses_pivoted') }}

),

order_lines as (

    select * from {{ ref('int_order_lines_priced') }}

),

revenue as (

    select
        customer_id,
        sum(
            case when {{ shoplogs.is_net_revenue() }} then line_amount_usd else 0 end
        ) as lifetime_value_usd

    from order_lines
    group by customer_id

),

ordered as (

    select
        customer_id,
        min(cast(ordered_at as date)) as first_order_date,
        count(*) as order_count

    from orders
    group by customer_id

),

final as (

    select
        ordered.customer_id,
        ordered.first_order_date,
        ordered.order_count,
        coalesce(revenue.lifetime_value_usd, 0) as lifetime_value_usd

    from ordered
    left join revenue
        on ordered.customer_id = revenue.customer_id

)

select * from final
