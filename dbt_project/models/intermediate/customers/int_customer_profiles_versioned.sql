-- One row per version of a customer's profile, built from the profile events themselves:
-- a version starts at its event (version 1: at the start of history) and ends where the
-- next one starts. A full rebuild gives
-- the same history, and two changes that reach one run stay two versions.
with

customer_events as (

    select * from {{ ref('stg_shop__customer_events') }}

),

sign_ups as (

    select
        customer_id,
        min(case when event_type = 'signup' then event_at end) as signed_up_at

    from customer_events
    group by customer_id

),

ordered as (

    -- Events of one second in the order they happened: the sign-up first, then by id.
    select
        *,
        row_number() over (
            partition by customer_id
            order by
                event_at asc,
                case when event_type = 'signup' then 0 else 1 end asc,
                customer_event_id asc
        ) as event_rank

    from customer_events

),

lasting as (

    -- An event overtaken within the same second by the next one opens no version: a
    -- version of zero length could hold no order.
    select
        *,
        lead(event_at) over (partition by customer_id order by event_rank) as next_event_at

    from ordered

),

versioned as (

    select
        customer_id,
        customer_event_id,
        email,
        first_name,
        last_name,
        country_code,
        city,
        row_number() over (partition by customer_id order by event_rank) as profile_version,
        event_at,
        lead(event_at) over (partition by customer_id order by event_rank) as valid_to

    from lasting
    where next_event_at is null or next_event_at > event_at

),

final as (

    select
        -- The event that opened the version names it: a late event that slips in before
        -- it renumbers the versions but never changes this key.
        {{ dbt.concat(["versioned.customer_id", "'-'", "versioned.customer_event_id"]) }}
            as customer_key,
        versioned.customer_id,
        versioned.profile_version,
        versioned.email,
        versioned.first_name,
        versioned.last_name,
        versioned.country_code,
        versioned.city,
        sign_ups.signed_up_at,
        -- Version 1 covers everything before it too: an order placed before the sign-up
        -- (the two logs ship independently) belongs to the customer, not the unknown one.
        case
            when versioned.profile_version = 1
                then cast('{{ var("customer_history_start") }}' as {{ dbt.type_timestamp() }})
            else versioned.event_at
        end as valid_from,
        versioned.valid_to,
        versioned.valid_to is null as is_current

    from versioned
    inner join sign_ups
        on versioned.customer_id = sign_ups.customer_id

)

select * from final
