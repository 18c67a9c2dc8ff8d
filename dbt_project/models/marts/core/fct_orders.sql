{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy=fact_incremental_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=['order_date'],
        dist='order_id',
        sort=['order_date'],
        post_hook="{{ shoplogs.delete_vanished('order_id', ref('stg_shop__order_events')) }}",
    )
}}

-- depends_on: {{ ref('stg_shop__customer_events') }}
-- depends_on: {{ ref('stg_shop__order_events') }}
-- depends_on: {{ ref('int_customer_profiles_versioned') }}
with

orders as (

    select * from {{ ref('int_orders_customer_versions_joined') }}
    {% if is_incremental() %}
        -- Every order of each affected customer: their order numbers and versions move.
        where customer_id in {{ shoplogs.affected_customers() }}
    {% endif %}

),

orders_numbered as (

    select
        *,
        row_number() over (
            partition by customer_id order by ordered_at, order_id
        ) as customer_order_number

    from orders

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
        cast(orders.order_id as {{ shoplogs.type_long_string() }}) as order_id,
        cast(orders.customer_id as {{ shoplogs.type_long_string() }}) as customer_id,
        -- The customer's profile as it was when the order was placed.
        cast(orders.customer_key as {{ shoplogs.type_long_string() }}) as customer_key,
        cast(orders.ordered_at as date) as order_date,
        cast(orders.order_status as varchar(16)) as order_status,
        cast(orders.currency_code as varchar(3)) as currency_code,
        cast(coalesce(order_totals.line_count, 0) as integer) as line_count,
        cast(coalesce(order_totals.item_quantity, 0) as integer) as item_quantity,
        -- 0 until the `placed` event, which carries the lines, has arrived.
        cast(coalesce(order_totals.order_total, 0) as numeric(18, 2)) as order_total,
        cast(coalesce(order_totals.order_total_usd, 0) as numeric(18, 2)) as order_total_usd,
        cast(orders.customer_order_number as integer) as customer_order_number,
        orders.customer_order_number = 1 as is_first_order,
        cast(orders.ordered_at as {{ dbt.type_timestamp() }}) as ordered_at,
        cast(orders.paid_at as {{ dbt.type_timestamp() }}) as paid_at,
        cast(orders.shipped_at as {{ dbt.type_timestamp() }}) as shipped_at,
        cast(orders.cancelled_at as {{ dbt.type_timestamp() }}) as cancelled_at,
        cast(orders.refunded_at as {{ dbt.type_timestamp() }}) as refunded_at,
        orders.cancelled_at is not null as is_cancelled,
        orders.refunded_at is not null as is_refunded,
        -- The one revenue definition (docs/overview.md): net revenue is paid, not
        -- cancelled and not refunded; gross bookings are every order placed.
        {{ shoplogs.is_net_revenue('orders') }} as is_revenue,
        cast(
            case
                when {{ shoplogs.is_net_revenue('orders') }}
                    then coalesce(order_totals.order_total_usd, 0)
                else 0
            end
            as numeric(18, 2)
        ) as net_revenue_usd,
        cast(orders.refunded_at as date) as refund_date,
        cast(
            case
                when {{ shoplogs.is_refunded_revenue('orders') }}
                    then coalesce(order_totals.order_total_usd, 0)
                else 0
            end
            as numeric(18, 2)
        ) as refunded_revenue_usd,
        cast(orders.seconds_to_pay / 3600.0 as numeric(12, 2)) as hours_to_pay,
        cast(orders.seconds_to_ship / 3600.0 as numeric(12, 2)) as hours_to_ship,
        cast(orders.first_run_date as date) as first_run_date,
        cast(orders.last_run_date as date) as last_run_date

    from orders_numbered as orders
    left join order_totals
        on orders.order_id = order_totals.order_id

)

select * from final
