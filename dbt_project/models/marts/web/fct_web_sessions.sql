with

sessions as (

    select * from {{ ref('int_web_sessions_aggregated') }}

),

final as (

    select
        session_id,
        visitor_id,
        cast(started_at as date) as session_date,
        started_at,
        ended_at,
        duration_seconds,
        request_count,
        page_view_count,
        bytes_sent,
        is_bot,
        page_view_count = 1 as is_bounce,
        entry_referrer,
        landing_page,
        exit_page

    from sessions

)

select * from final
