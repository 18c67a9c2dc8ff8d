-- Every order points at the profile version whose window holds the order's time
-- (or at the unknown member while its customer has not arrived). Rows returned fail.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        orders.order_id,
        orders.customer_key,
        orders.ordered_at,
        customers.valid_from,
        customers.valid_to

    from orders
    inner join customers
        on orders.customer_key = customers.customer_key
    where
        customers.customer_key != '{{ var("unknown_customer_key") }}'
        and (
            orders.customer_id != customers.customer_id
            or orders.ordered_at < customers.valid_from
            or orders.ordered_at >= customers.valid_to
        )

)

select * from final
