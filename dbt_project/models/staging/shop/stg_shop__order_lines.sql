with

source as (

    select * from {{ source('shop', 'order_lines') }}
    {{ shoplogs.restaged_partitions() }}

),

renamed as (

    select
        {{ dbt.concat(["order_id", "'-'", "cast(line_number as " ~ dbt.type_string() ~ ")"]) }}
            as order_line_id,
        cast(event_id as {{ dbt.type_string() }}) as order_event_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(line_number as integer) as line_number,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(quantity as integer) as quantity,
        cast(unit_price as numeric(12, 2)) as unit_price,
        cast(dt as date) as run_date

    from source

),

deduplicated as (

    {{ deduplicate('renamed', 'order_line_id', 'run_date, order_event_id') }}

)

select
    order_line_id,
    order_event_id,
    order_id,
    line_number,
    product_id,
    quantity,
    unit_price,
    run_date

from deduplicated
{{ shoplogs.staged_earlier('order_line_id') }}
