with

orders as (

    select * from {{ ref('int_orders_statuses_pivoted') }}

),

order_lines as (

    select * from {{ ref('int_order_lines_priced') }}

),

order_totals as (

    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_quantity,
        sum(line_amount) as order_total,
        sum(line_amount_usd) as order_total_usd

    from order_lines
    group by order_id

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        cast(orders.ordered_at as date) as order_date,
        orders.order_status,
        orders.currency_code,
        coalesce(order_totals.line_count, 0) as line_count,
        coalesce(order_totals.item_quantity, 0) as item_quantity,
        order_totals.order_total,
        order_totals.order_total_usd,
        orders.ordered_at,
        orders.paid_at,
        orders.shipped_at,
        orders.cancelled_at,
        orders.refunded_at,
        orders.paid_at is not null and orders.refunded_at is null as is_revenue

    from orders
    left join order_totals
        on orders.order_id = order_totals.order_id

)

select * from final
