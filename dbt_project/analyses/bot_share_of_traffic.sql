-- Bots' share of web sessions and of requests per day, as the semantic layer defines them
-- (models/marts/web/_web__metrics.yml, through macros/metrics/): saved query
-- bot_share_of_traffic.
with

sessions as (

    select * from {{ ref('fct_web_sessions') }}

),

final as (

    select
        session_date,
        {{ shoplogs.metric_sql('sessions') }} as sessions,
        {{ shoplogs.metric_sql('bot_sessions') }} as bot_sessions,
        {{ shoplogs.metric_sql('classified_sessions') }} as classified_sessions,
        round({{ shoplogs.metric_sql('bot_share') }}, 4) as bot_session_share,
        {{ shoplogs.metric_sql('requests') }} as requests,
        {{ shoplogs.metric_sql('bot_requests') }} as bot_requests,
        round({{ shoplogs.metric_sql('bot_request_share') }}, 4) as bot_request_share

    from sessions
    group by session_date

)

select * from final
order by session_date
