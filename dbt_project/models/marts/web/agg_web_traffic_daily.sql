-- One row per day: the web measures analysts ask for, each with its stated denominator.
with

sessions as (

    select * from {{ ref('fct_web_sessions') }}

),

daily as (

    select
        session_date,
        count(*) as sessions,
        sum(case when is_bot then 1 else 0 end) as bot_sessions,
        sum(case when is_bot is null then 1 else 0 end) as unknown_bot_sessions,
        sum(case when not is_bot then 1 else 0 end) as human_sessions,
        sum(case when not is_bot then page_view_count else 0 end) as human_page_views,
        sum(
            case when not is_bot and page_view_count > 0 then 1 else 0 end
        ) as viewing_sessions,
        sum(case when not is_bot and is_bounce then 1 else 0 end) as bounced_sessions,
        sum(case when not is_bot and is_converted then 1 else 0 end) as converted_sessions

    from sessions
    group by session_date

),

final as (

    select
        session_date,
        cast(sessions as integer) as sessions,
        cast(bot_sessions as integer) as bot_sessions,
        cast(unknown_bot_sessions as integer) as unknown_bot_sessions,
        cast(
            1.0 * bot_sessions / nullif(sessions - unknown_bot_sessions, 0) as numeric(9, 4)
        ) as bot_share,
        cast(human_sessions as integer) as human_sessions,
        cast(human_page_views as integer) as human_page_views,
        cast(
            1.0 * human_page_views / nullif(human_sessions, 0) as numeric(9, 4)
        ) as page_views_per_session,
        cast(bounced_sessions as integer) as bounced_sessions,
        cast(
            1.0 * bounced_sessions / nullif(viewing_sessions, 0) as numeric(9, 4)
        ) as bounce_rate,
        cast(converted_sessions as integer) as converted_sessions,
        cast(
            1.0 * converted_sessions / nullif(human_sessions, 0) as numeric(9, 4)
        ) as conversion_rate

    from daily

)

select * from final
