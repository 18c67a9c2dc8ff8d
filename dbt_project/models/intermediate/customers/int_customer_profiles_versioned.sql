-- One row per version of a customer's profile, built from the profile events themselves:
-- a version starts at its event and ends where the next one starts. A full rebuild gives
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

versioned as (

    select
        customer_id,
        customer_event_id,
        email,
        first_name,
        last_name,
        country_code,
        city,
        event_at as valid_from,
        lead(event_at) over (
            partition by customer_id order by event_at asc, customer_event_id asc
        ) as valid_to,
        row_number() over (
            partition by customer_id order by event_at asc, customer_event_id asc
        ) as profile_version

    from customer_events

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
        versioned.valid_from,
        versioned.valid_to,
        versioned.valid_to is null as is_current

    from versioned
    inner join sign_ups
        on versioned.customer_id = sign_ups.customer_id

)

select * from final
