-- Gross bookings and net revenue (by order date and by refund date) in US dollars per day
-- and customer country, with the average order value. Every measure is the semantic
-- layer's own (models/marts/core/_core__metrics.yml, through macros/metrics/): saved
-- query revenue_by_day_and_country.
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

-- The orders' measures on their order day; refunds again on their refund day.
daily_amounts as (

    select
        order_date as revenue_date,
        country_code,
        {{ shoplogs.metric_sql('orders') }} as orders,
        {{ shoplogs.metric_sql('gross_bookings') }} as gross_bookings,
        {{ shoplogs.metric_sql('net_revenue') }} as net_revenue,
        {{ shoplogs.metric_sql('refunded_later') }} as refunded_later,
        0 as refunds,
        {{ shoplogs.metric_sql('revenue_orders') }} as revenue_orders

    from orders_located
    group by
        order_date,
        country_code

    union all

    select
        refund_date as revenue_date,
        country_code,
        0 as orders,
        0 as gross_bookings,
        0 as net_revenue,
        0 as refunded_later,
        {{ shoplogs.measure('refunds_usd') }} as refunds,
        0 as revenue_orders

    from orders_located
    where refund_date is not null
    group by
        refund_date,
        country_code

),

daily as (

    select
        revenue_date,
        country_code,
        sum(orders) as orders,
        sum(gross_bookings) as gross_bookings,
        sum(net_revenue) as net_revenue,
        sum(refunded_later) as refunded_later,
        sum(refunds) as refunds,
        sum(revenue_orders) as revenue_orders

    from daily_amounts
    group by
        revenue_date,
        country_code

),

final as (

    select
        revenue_date,
        country_code,
        orders,
        gross_bookings as gross_bookings_usd,
        net_revenue as net_revenue_usd,
        -- the metrics' expressions over the columns named after their inputs
        {{ shoplogs.metric_sql('net_revenue_by_refund_date') }} as net_revenue_by_refund_date_usd,
        revenue_orders,
        round(
            {{ shoplogs.metric_sql('average_order_value', over_columns=true) }}, 4
        ) as average_order_value_usd

    from daily

)

select * from final
order by revenue_date, country_code
