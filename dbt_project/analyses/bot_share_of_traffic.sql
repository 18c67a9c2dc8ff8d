-- Bots' share of web sessions and of requests per day.
with

sessions as (

    select * from {{ ref('fct_web_sessions') }}

),

final as (

    select
        session_date,
        count(*) as sessions,
        sum(case when is_bot then 1 else 0 end) as bot_sessions,
        round(1.0 * sum(case when is_bot then 1 else 0 end) / count(*), 4) as bot_session_share,
        sum(request_count) as requests,
        sum(case when is_bot then request_count else 0 end) as bot_requests,
        round(
            1.0 * sum(case when is_bot then request_count else 0 end)
            / nullif(sum(request_count), 0), 4
        ) as bot_request_share

    from sessions
    group by session_date

)

select * from final
order by session_date
