-- One row per order with the customer profile version valid when it was placed. An order
-- whose customer has not arrived yet (or was placed before the first profile event) gets
-- the unknown member '-1', so an inner join to dim_customers never drops it; an order of an
-- erased customer (customer id '-2', orchestration/erasure.py) gets the erased member '-2'.
with

orders as (

    select * from {{ ref('int_orders_statuses_pivoted') }}

),

customer_versions as (

    select * from {{ ref('int_customer_profiles_versioned') }}

),

final as (

    select
        orders.*,
        case
            when orders.customer_id = '{{ var("erased_customer_key") }}'
                then '{{ var("erased_customer_key") }}'
            else coalesce(customer_versions.customer_key, '{{ var("unknown_customer_key") }}')
        end as customer_key

    from orders
    left join customer_versions
        on
            orders.customer_id = customer_versions.customer_id
            and orders.ordered_at >= customer_versions.valid_from
            and (
                orders.ordered_at < customer_versions.valid_to
                or customer_versions.valid_to is null
            )

)

select * from final
