-- Order lines with their amounts in the order's currency and in US dollars.
with

order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}

),

orders as (

    select * from {{ ref('int_orders_customer_versions_joined') }}

),

exchange_rates as (

    select * from {{ ref('int_exchange_rates_dated') }}

),

products as (

    select * from {{ ref('products') }}

),

priced as (

    select
        order_lines.order_line_id,
        order_lines.order_id,
        order_lines.line_number,
        order_lines.product_id,
        orders.customer_id,
        orders.customer_key,
        orders.ordered_at,
        orders.currency_code,
        orders.first_run_date,
        orders.last_run_date,
        orders.paid_at,
        orders.cancelled_at,
        orders.refunded_at,
        order_lines.quantity,
        order_lines.unit_price,
        order_lines.quantity * order_lines.unit_price as line_amount,
        exchange_rates.usd_per_unit,
        cast(
            order_lines.unit_price * exchange_rates.usd_per_unit as numeric(18, 2)
        ) as unit_price_usd,
        cast(products.list_price_usd as numeric(12, 2)) as list_price_usd,
        cast(
            order_lines.quantity * order_lines.unit_price * exchange_rates.usd_per_unit
            as numeric(18, 2)
        ) as line_amount_usd

    from order_lines
    inner join orders
        on order_lines.order_id = orders.order_id
    left join exchange_rates
        on
            orders.currency_code = exchange_rates.currency_code
            and cast(orders.ordered_at as date) >= exchange_rates.valid_from
            and (
                cast(orders.ordered_at as date) < exchange_rates.valid_to
                or exchange_rates.valid_to is null
            )
    left join products
        on order_lines.product_id = products.product_id

)

select * from priced
