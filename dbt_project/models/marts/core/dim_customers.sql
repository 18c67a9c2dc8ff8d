{{ config(dist='all', sort=['customer_id']) }}

-- One row per version of a customer's profile (type 2, from the snp_customers snapshot).
-- Facts join the version valid when the event happened through customer_key; filter
-- `is_current` for today's profile.
with

profile_snapshots as (

    select * from {{ ref('snp_customers') }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by customer_id order by dbt_valid_from
        ) as profile_version

    from profile_snapshots

),

final as (

    select
        {%- set version_text = "cast(profile_version as " ~ dbt.type_string() ~ ")" %}
        cast(
            {{ dbt.concat(["customer_id", "'-'", version_text]) }} as {{ dbt.type_string() }}
        ) as customer_key,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(profile_version as integer) as profile_version,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(first_name as {{ dbt.type_string() }}) as first_name,
        cast(last_name as {{ dbt.type_string() }}) as last_name,
        cast(country_code as {{ dbt.type_string() }}) as country_code,
        cast(city as {{ dbt.type_string() }}) as city,
        cast(signed_up_at as {{ dbt.type_timestamp() }}) as signed_up_at,
        -- The first version stands for everything before it, so that an order placed
        -- before the customer's first snapshot still finds its customer.
        cast(
            case
                when profile_version = 1 then cast('1900-01-01' as {{ dbt.type_timestamp() }})
                else dbt_valid_from
            end
            as {{ dbt.type_timestamp() }}
        ) as valid_from,
        cast(dbt_valid_to as {{ dbt.type_timestamp() }}) as valid_to,
        dbt_valid_to is null as is_current

    from versioned

)

select * from final
