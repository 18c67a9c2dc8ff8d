-- One row per order: when it reached each lifecycle step and where it is now.
with

order_events as (

    select * from {{ ref('stg_shop__order_events') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_id
            order by event_at desc, order_event_id desc
        ) as recency_rank

    from order_events

),

pivoted as (

    select
        order_id,
        max(case when event_type = 'placed' then customer_id end) as customer_id,
        max(case when event_type = 'placed' then currency_code end) as currency_code,
        min(case when event_type = 'placed' then event_at end) as placed_at,
        min(case when event_type = 'paid' then event_at end) as paid_at,
        min(case when event_type = 'shipped' then event_at end) as shipped_at,
        min(case when event_type = 'cancelled' then event_at end) as cancelled_at,
        min(case when event_type = 'refunded' then event_at end) as refunded_at,
        max(case when recency_rank = 1 then event_type end) as order_status,
        -- An order whose `placed` event has not arrived yet still gets its customer.
        max(customer_id) as any_customer_id,
        max(currency_code) as any_currency_code,
        min(event_at) as first_event_at,
        min(run_date) as first_run_date,
        max(run_date) as last_run_date

    from ranked
    group by order_id

),

final as (

    select
        order_id,
        coalesce(customer_id, any_customer_id) as customer_id,
        coalesce(currency_code, any_currency_code) as currency_code,
        order_status,
        coalesce(placed_at, first_event_at) as ordered_at,
        placed_at,
        paid_at,
        shipped_at,
        cancelled_at,
        refunded_at,
        -- Here, not in the mart: fakesnow cannot translate datediff inside the subquery
        -- an enforced contract wraps a model in.
        {{ dbt.datediff('coalesce(placed_at, first_event_at)', 'paid_at', 'second') }}
            as seconds_to_pay,
        {{ dbt.datediff('coalesce(placed_at, first_event_at)', 'shipped_at', 'second') }}
            as seconds_to_ship,
        first_run_date,
        last_run_date

    from pivoted

)

select * from final
