with

source as (

    select * from {{ source('shop', 'customers') }}
    {{ shoplogs.restaged_partitions() }}

),

renamed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as customer_event_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(event_at as {{ dbt.type_timestamp() }}) as event_at,
        lower(email) as email,
        first_name,
        last_name,
        upper(country_code) as country_code,
        city,
        cast(dt as date) as run_date

    from source

),

deduplicated as (

    -- A resent event can reach two runs; the first run's copy wins.
    {{ deduplicate('renamed', 'customer_event_id', 'run_date') }}

)

select
    customer_event_id,
    customer_id,
    event_type,
    event_at,
    email,
    first_name,
    last_name,
    country_code,
    city,
    run_date

from deduplicated
{{ shoplogs.staged_earlier('customer_event_id') }}
