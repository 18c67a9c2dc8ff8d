{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy=fact_incremental_strategy(),
        on_schema_change='append_new_columns',
        cluster_by=['session_date'],
        dist='session_id',
        sort=['session_date'],
        post_hook="{{ shoplogs.delete_vanished_sessions() }}",
    )
}}

-- depends_on: {{ ref('stg_web__requests') }}
with

sessions as (

    select * from {{ ref('int_web_sessions_aggregated') }}
    {% if is_incremental() %}
        -- Every session a run in the window brought requests to (or, rewritten, took them
        -- away from), and every session sharing a confirmed order with one of them.
        where session_id in {{ shoplogs.affected_sessions() }}
    {% endif %}

),

final as (

    select
        cast(session_id as {{ shoplogs.type_long_string() }}) as session_id,
        cast(visitor_id as {{ shoplogs.type_long_string() }}) as visitor_id,
        cast(started_at as date) as session_date,
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(ended_at as {{ dbt.type_timestamp() }}) as ended_at,
        cast(duration_seconds as integer) as duration_seconds,
        cast(request_count as integer) as request_count,
        cast(page_view_count as integer) as page_view_count,
        cast(bytes_sent as {{ dbt.type_bigint() }}) as bytes_sent,
        is_bot,
        cast(avg_request_duration_ms as numeric(12, 3)) as avg_request_duration_ms,
        page_view_count = 1 as is_bounce,
        cast(order_id as {{ shoplogs.type_long_string() }}) as order_id,
        order_id is not null as is_converted,
        cast(entry_referrer as {{ shoplogs.type_long_string() }}) as entry_referrer,
        cast(landing_page as {{ shoplogs.type_long_string() }}) as landing_page,
        cast(exit_page as {{ shoplogs.type_long_string() }}) as exit_page,
        cast(first_run_date as date) as first_run_date,
        cast(run_date as date) as run_date

    from sessions

)

select * from final
