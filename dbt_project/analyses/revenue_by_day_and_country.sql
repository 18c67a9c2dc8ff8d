-- Gross bookings and net revenue (by order date and by refund date) in US dollars per day
-- and customer country.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

orders_located as (

    select
        orders.*,
        -- The unknown customer '-1' (profile not arrived yet) has no country.
        coalesce(customers.country_code, '??') as country_code

    from orders
    inner join customers
        on orders.customer_key = customers.customer_key

),

-- Each order on its order day; each refund of revenue again on its refund day.
daily_amounts as (

    select
        order_date as revenue_date,
        country_code,
        1 as orders,
        order_total_usd as gross_bookings_usd,
        net_revenue_usd,
        net_revenue_usd + refunded_revenue_usd as net_revenue_by_refund_date_usd

    from orders_located

    union all

    select
        refund_date as revenue_date,
        country_code,
        0 as orders,
        0 as gross_bookings_usd,
        0 as net_revenue_usd,
        -1 * refunded_revenue_usd as net_revenue_by_refund_date_usd

    from orders_located
    where refunded_revenue_usd != 0

),

final as (

    select
        revenue_date,
        country_code,
        sum(orders) as orders,
        sum(gross_bookings_usd) as gross_bookings_usd,
        sum(net_revenue_usd) as net_revenue_usd,
        sum(net_revenue_by_refund_date_usd) as net_revenue_by_refund_date_usd

    from daily_amounts
    group by
        revenue_date,
        country_code

)

select * from final
order by revenue_date, country_code
