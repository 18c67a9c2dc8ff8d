-- The ten products with the most net revenue in US dollars, with units and gross bookings.
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

final as (

    select
        products.product_id,
        products.product_name,
        products.category,
        count(distinct order_lines.order_id) as orders,
        sum(order_lines.quantity) as units,
        sum(order_lines.line_amount_usd) as gross_bookings_usd,
        sum(order_lines.net_revenue_usd) as net_revenue_usd

    from order_lines
    inner join products
        on order_lines.product_id = products.product_id
    group by
        products.product_id,
        products.product_name,
        products.category

)

select * from final
order by net_revenue_usd desc, product_id asc
limit 10
