-- One row per customer with the current profile. The full history (type-2) arrives with
-- the snapshot; this keeps the latest values and when the customer signed up.
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
        max(event_at) as profile_updated_at,
        count(*) as profile_version_count

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
        history.profile_updated_at,
        history.profile_version_count

    from ranked
    inner join history
        on ranked.customer_id = history.customer_id
    where ranked.recency_rank = 1

)

select * from final
