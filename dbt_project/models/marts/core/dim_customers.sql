{{ config(dist='all', sort=['customer_id']) }}

-- One row per version of a customer's profile (type 2), from the profile events; plus the
-- unknown member that orders point at while their customer has not arrived.
with

customer_versions as (

    select * from {{ ref('int_customer_profiles_versioned') }}

),

order_summaries as (

    select * from {{ ref('int_customers_orders_summarized') }}

),

unknown_customer as (

    select
        '{{ var("unknown_customer_key") }}' as customer_key,
        '{{ var("unknown_customer_key") }}' as customer_id,
        0 as profile_version,
        cast(null as {{ shoplogs.type_long_string() }}) as email,
        cast(null as {{ shoplogs.type_long_string() }}) as first_name,
        cast(null as {{ shoplogs.type_long_string() }}) as last_name,
        cast(null as varchar(2)) as country_code,
        cast(null as {{ shoplogs.type_long_string() }}) as city,
        cast(null as {{ dbt.type_timestamp() }}) as signed_up_at,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to,
        true as is_current

),

unioned as (

    select
        customer_key,
        customer_id,
        profile_version,
        email,
        first_name,
        last_name,
        country_code,
        city,
        signed_up_at,
        valid_from,
        valid_to,
        is_current

    from customer_versions

    union all

    select
        customer_key,
        customer_id,
        profile_version,
        email,
        first_name,
        last_name,
        country_code,
        city,
        signed_up_at,
        valid_from,
        valid_to,
        is_current

    from unknown_customer

),

final as (

    select
        cast(customer_key as {{ shoplogs.type_long_string() }}) as customer_key,
        cast(unioned.customer_id as {{ shoplogs.type_long_string() }}) as customer_id,
        cast(profile_version as integer) as profile_version,
        cast(email as {{ shoplogs.type_long_string() }}) as email,
        cast(first_name as {{ shoplogs.type_long_string() }}) as first_name,
        cast(last_name as {{ shoplogs.type_long_string() }}) as last_name,
        cast(country_code as varchar(2)) as country_code,
        cast(city as {{ shoplogs.type_long_string() }}) as city,
        cast(signed_up_at as {{ dbt.type_timestamp() }}) as signed_up_at,
        cast(valid_from as {{ dbt.type_timestamp() }}) as valid_from,
        cast(valid_to as {{ dbt.type_timestamp() }}) as valid_to,
        is_current,
        cast(order_summaries.first_order_date as date) as first_order_date,
        cast(coalesce(order_summaries.order_count, 0) as integer) as order_count,
        cast(
            coalesce(order_summaries.lifetime_value_usd, 0) as numeric(18, 2)
        ) as lifetime_value_usd

    from unioned
    left join order_summaries
        on unioned.customer_id = order_summaries.customer_id

)

select * from final
