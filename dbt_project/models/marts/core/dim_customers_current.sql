{{ config(materialized='view', bind=false) }}

-- One row per customer (and the unknown member): today's profile, dim_customers filtered on
-- is_current, with the customer-grain measures (first order, orders, lifetime value), which
-- belong here and not on every version. A late-binding view on Redshift (`bind=false`):
-- rebuilding dim_customers does not drop it.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

order_summaries as (

    select * from {{ ref('int_customers_orders_summarized') }}

),

final as (

    select
        customers.customer_key,
        customers.customer_id,
        customers.profile_version,
        customers.email,
        customers.first_name,
        customers.last_name,
        customers.country_code,
        customers.city,
        customers.signed_up_at,
        customers.valid_from,
        customers.valid_to,
        customers.is_current,
        cast(order_summaries.first_order_date as date) as first_order_date,
        cast(coalesce(order_summaries.order_count, 0) as integer) as order_count,
        cast(
            coalesce(order_summaries.lifetime_value_usd, 0) as numeric(18, 2)
        ) as lifetime_value_usd

    from customers
    left join order_summaries
        on customers.customer_id = order_summaries.customer_id
    where customers.is_current

)

select * from final
