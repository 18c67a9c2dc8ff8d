-- Human web sessions per day, the share of them that placed an order, and the share that
-- bounced. Every measure and rate is the semantic layer's own (models/marts/web/
-- _web__metrics.yml, through macros/metrics/): saved query web_session_conversion.
with

sessions as (

    select * from {{ ref('fct_web_sessions') }}

),

final as (

    select
        session_date,
        {{ shoplogs.metric_sql('human_sessions') }} as human_sessions,
        {{ shoplogs.metric_sql('converted_sessions') }} as converted_sessions,
        round({{ shoplogs.metric_sql('conversion_rate') }}, 4) as conversion_rate,
        {{ shoplogs.metric_sql('viewing_sessions') }} as viewing_sessions,
        {{ shoplogs.metric_sql('bounced_sessions') }} as bounced_sessions,
        round({{ shoplogs.metric_sql('bounce_rate') }}, 4) as bounce_rate

    from sessions
    group by session_date

)

select * from final
order by session_date
