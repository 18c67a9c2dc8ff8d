-- One row per customer: the latest profile and when they signed up. The snapshot
-- snp_customers keeps every version of it (type 2) for dim_customers.
with

customer_events as (

    select * from {{ ref('stg_shop__customer_events') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by event_at desc, customer_event_id desc
        ) as recency_rank

    from customer_events

),

history as (

    select
        customer_id,
        min(case when event_type = 'signup' then event_at end) as signed_up_at,
        max(event_at) as profile_updated_at

    from customer_events
    group by customer_id

),

final as (

    select
        ranked.customer_id,
        ranked.email,
        ranked.first_name,
        ranked.last_name,
        ranked.country_code,
        ranked.city,
        history.signed_up_at,
        history.profile_updated_at

    from ranked
    inner join history
        on ranked.customer_id = history.customer_id
    where ranked.recency_rank = 1

)

select * from final
