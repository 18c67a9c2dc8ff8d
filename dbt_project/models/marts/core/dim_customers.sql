{{ config(dist='all', sort=['customer_id']) }}

-- One row per version of a customer's profile (type 2), from the profile events; plus the
-- unknown member that orders point at while their customer has not arrived, and the
-- erased member that keeps the orders of customers erased on request
-- (orchestration/erasure.py). Measures of the customer (orders, lifetime value) live on
-- dim_customers_current, one row per customer: here they would repeat on every version.
with

customer_versions as (

    select * from {{ ref('int_customer_profiles_versioned') }}

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

erased_customer as (

    select
        '{{ var("erased_customer_key") }}' as customer_key,
        '{{ var("erased_customer_key") }}' as customer_id,
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

    from erased_customer

),

final as (

    select
        cast(customer_key as {{ shoplogs.type_long_string() }}) as customer_key,
        cast(customer_id as {{ shoplogs.type_long_string() }}) as customer_id,
        cast(profile_version as integer) as profile_version,
        cast(email as {{ shoplogs.type_long_string() }}) as email,
        cast(first_name as {{ shoplogs.type_long_string() }}) as first_name,
        cast(last_name as {{ shoplogs.type_long_string() }}) as last_name,
        cast(country_code as varchar(2)) as country_code,
        cast(city as {{ shoplogs.type_long_string() }}) as city,
        cast(signed_up_at as {{ dbt.type_timestamp() }}) as signed_up_at,
        cast(valid_from as {{ dbt.type_timestamp() }}) as valid_from,
        cast(valid_to as {{ dbt.type_timestamp() }}) as valid_to,
        is_current

    from unioned

)

select * from final
