-- The ten products with the most net revenue in US dollars, with units and gross bookings,
-- as the semantic layer defines them (models/marts/core/_core__metrics.yml, through
-- macros/metrics/): saved query top_products.
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
        {{ shoplogs.metric_sql('line_orders') }} as orders,
        {{ shoplogs.metric_sql('units') }} as units,
        {{ shoplogs.metric_sql('line_gross_bookings') }} as gross_bookings_usd,
        {{ shoplogs.metric_sql('line_net_revenue') }} as net_revenue_usd

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
