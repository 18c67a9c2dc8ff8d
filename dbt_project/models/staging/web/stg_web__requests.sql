with

source as (

    select * from {{ source('web', 'web_requests') }}
    {{ shoplogs.restaged_partitions() }}

),

renamed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as request_id,
        cast(session_id as {{ dbt.type_string() }}) as session_id,
        cast(visitor_id as {{ dbt.type_string() }}) as visitor_id,
        cast(request_at as {{ dbt.type_timestamp() }}) as request_at,
        client_ip,
        remote_user,
        method as http_method,
        path as request_path,
        protocol as http_protocol,
        cast(status as integer) as status_code,
        cast(bytes_sent as {{ dbt.type_bigint() }}) as bytes_sent,
        referrer,
        user_agent,
        is_bot,
        is_page_view,
        virtual_host,
        forwarded_for,
        cast(request_time_us as {{ dbt.type_bigint() }}) as request_time_us,
        cast(upstream_time_us as {{ dbt.type_bigint() }}) as upstream_time_us,
        cast(dt as date) as run_date

    from source

),

deduplicated as (

    {{ deduplicate('renamed', 'request_id', 'run_date') }}

)

select
    request_id,
    session_id,
    visitor_id,
    request_at,
    client_ip,
    remote_user,
    http_method,
    request_path,
    http_protocol,
    status_code,
    bytes_sent,
    referrer,
    user_agent,
    is_bot,
    is_page_view,
    virtual_host,
    forwarded_for,
    request_time_us,
    upstream_time_us,
    run_date

from deduplicated
{{ shoplogs.staged_earlier('request_id') }}
