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
    group by 1

),

final as (

    select
        (select count(*) from customers) as customers,
        (select count(*) from customers where order_count >= 2) as repeat_customers,
        round(
            1.0 * (select count(*) from customers where order_count >= 2)
            / nullif((select count(*) from customers), 0), 4
        ) as repeat_customer_share,
        (select count(*) from orders) as orders,
        (select count(*) from orders where not is_first_order) as repeat_orders,
        round(
            1.0 * (select count(*) from orders where not is_first_order)
            / nullif((select count(*) from orders), 0), 4
        ) as repeat_order_share

)

select * from final
