with

source as (

    select * from {{ source('shop', 'orders') }}
    {{ shoplogs.restaged_partitions() }}

),

renamed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as order_event_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(event_at as {{ dbt.type_timestamp() }}) as event_at,
        upper(currency) as currency_code,
        cast(line_count as integer) as line_count,
        cast(dt as date) as run_date

    from source

),

deduplicated as (

    {{ deduplicate('renamed', 'order_event_id', 'run_date') }}

)

select
    order_event_id,
    order_id,
    customer_id,
    event_type,
    event_at,
    currency_code,
    line_count,
    run_date

from deduplicated
{{ shoplogs.staged_earlier('order_event_id') }}
