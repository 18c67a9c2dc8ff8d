{{
    config(
        materialized='incremental',
        unique_key='order_line_id',
        incremental_strategy=fact_incremental_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=['order_date'],
        dist='order_id',
        sort=['order_date'],
        post_hook="{{ shoplogs.delete_vanished('order_line_id', ref('stg_shop__order_lines')) }}",
    )
}}

-- depends_on: {{ ref('stg_shop__customer_events') }}
-- depends_on: {{ ref('stg_shop__order_events') }}
-- depends_on: {{ ref('stg_shop__order_lines') }}
-- depends_on: {{ ref('int_customer_profiles_versioned') }}
with

order_lines as (

    select * from {{ ref('int_order_lines_priced') }}
    {% if is_incremental() %}
        where customer_id in {{ shoplogs.affected_customers() }}
    {% endif %}

),

final as (

    select
        cast(order_line_id as {{ shoplogs.type_long_string() }}) as order_line_id,
        cast(order_id as {{ shoplogs.type_long_string() }}) as order_id,
        cast(product_id as {{ shoplogs.type_long_string() }}) as product_id,
        cast(customer_id as {{ shoplogs.type_long_string() }}) as customer_id,
        -- The customer's profile as it was when the order was placed.
        cast(customer_key as {{ shoplogs.type_long_string() }}) as customer_key,
        cast(ordered_at as date) as order_date,
        cast(line_number as integer) as line_number,
        cast(currency_code as varchar(3)) as currency_code,
        cast(quantity as integer) as quantity,
        cast(unit_price as numeric(12, 2)) as unit_price,
        cast(unit_price_usd as numeric(12, 2)) as unit_price_usd,
        cast(list_price_usd as numeric(12, 2)) as list_price_usd,
        -- Price paid against the catalogue's list price, both in US dollars per unit.
        cast(list_price_usd - unit_price_usd as numeric(12, 2)) as unit_discount_usd,
        cast(line_amount as numeric(18, 2)) as line_amount,
        cast(line_amount_usd as numeric(18, 2)) as line_amount_usd,
        cancelled_at is not null as is_cancelled,
        refunded_at is not null as is_refunded,
        {{ shoplogs.is_net_revenue() }} as is_revenue,
        cast(
            case
                when {{ shoplogs.is_net_revenue() }} then line_amount_usd
                else 0
            end
            as numeric(18, 2)
        ) as net_revenue_usd,
        cast(first_run_date as date) as first_run_date,
        cast(last_run_date as date) as last_run_date

    from order_lines

)

select * from final
