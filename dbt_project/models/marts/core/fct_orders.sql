{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=fact_incremental_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=['order_date'],
        dist='order_id',
        sort=['order_date'],
    )
}}

-- depends_on: {{ ref('stg_shop__customer_events') }}
with

orders as (

    select * from {{ ref('int_orders_customer_versions_joined') }}
    {% if is_incremental() %}
        where
            {{ within_lookback('last_run_date') }}
            or {{ customer_rekeyed('last_run_date') }}
    {% endif %}

),

order_lines as (

    select * from {{ ref('int_order_lines_priced') }}

),

order_totals as (

    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_quantity,
        sum(line_amount) as order_total,
        sum(line_amount_usd) as order_total_usd

    from order_lines
    group by order_id

),

final as (

    select
        cast(orders.order_id as {{ dbt.type_string() }}) as order_id,
        cast(orders.customer_id as {{ dbt.type_string() }}) as customer_id,
        -- The customer's profile as it was when the order was placed.
        cast(orders.customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(orders.ordered_at as date) as order_date,
        cast(orders.order_status as {{ dbt.type_string() }}) as order_status,
        cast(orders.currency_code as {{ dbt.type_string() }}) as currency_code,
        cast(coalesce(order_totals.line_count, 0) as integer) as line_count,
        cast(coalesce(order_totals.item_quantity, 0) as integer) as item_quantity,
        cast(order_totals.order_total as numeric(18, 2)) as order_total,
        cast(order_totals.order_total_usd as numeric(18, 2)) as order_total_usd,
        cast(orders.ordered_at as {{ dbt.type_timestamp() }}) as ordered_at,
        cast(orders.paid_at as {{ dbt.type_timestamp() }}) as paid_at,
        cast(orders.shipped_at as {{ dbt.type_timestamp() }}) as shipped_at,
        cast(orders.cancelled_at as {{ dbt.type_timestamp() }}) as cancelled_at,
        cast(orders.refunded_at as {{ dbt.type_timestamp() }}) as refunded_at,
        orders.cancelled_at is not null as is_cancelled,
        orders.refunded_at is not null as is_refunded,
        -- The one revenue definition (docs/overview.md): net revenue is paid, not
        -- cancelled and not refunded; gross is every order placed.
        {{ shoplogs.is_net_revenue('orders') }} as is_revenue,
        cast(
            case
                when {{ shoplogs.is_net_revenue('orders') }} then order_totals.order_total_usd
                else 0
            end
            as numeric(18, 2)
        ) as net_revenue_usd,
        cast(orders.last_run_date as date) as last_run_date

    from orders
    left join order_totals
        on orders.order_id = order_totals.order_id

)

select * from final
