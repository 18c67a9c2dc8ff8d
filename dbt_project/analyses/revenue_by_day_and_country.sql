-- Gross and net revenue in US dollars per order day and customer country.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        orders.order_date,
        -- The unknown customer '-1' (profile not arrived yet) has no country.
        coalesce(customers.country_code, '??') as country_code,
        count(*) as orders,
        sum(orders.order_total_usd) as gross_revenue_usd,
        sum(orders.net_revenue_usd) as net_revenue_usd

    from orders
    inner join customers
        on orders.customer_key = customers.customer_key
    group by
        orders.order_date,
        coalesce(customers.country_code, '??')

)

select * from final
order by order_date, country_code
