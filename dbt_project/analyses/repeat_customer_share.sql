-- How many ordering customers came back for a second order, and how many orders are repeats.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select
        customer_id,
        max(customer_order_number) as order_count

    from orders
    group by customer_id

),

customer_counts as (

    select
        count(*) as customers,
        sum(case when order_count >= 2 then 1 else 0 end) as repeat_customers

    from customers

),

order_counts as (

    select
        count(*) as orders,
        sum(case when is_first_order then 0 else 1 end) as repeat_orders

    from orders

),

final as (

    select
        customer_counts.customers,
        customer_counts.repeat_customers,
        round(
            1.0 * customer_counts.repeat_customers / nullif(customer_counts.customers, 0), 4
        ) as repeat_customer_share,
        order_counts.orders,
        order_counts.repeat_orders,
        round(1.0 * order_counts.repeat_orders / nullif(order_counts.orders, 0), 4)
            as repeat_order_share

    from customer_counts
    cross join order_counts

)

select * from final
