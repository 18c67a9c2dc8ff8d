-- Human web sessions per day and the share of them that placed an order.
with

sessions as (

    select * from {{ ref('fct_web_sessions') }}

),

final as (

    select
        session_date,
        count(*) as human_sessions,
        sum(case when is_converted then 1 else 0 end) as converted_sessions,
        round(
            1.0 * sum(case when is_converted then 1 else 0 end) / count(*), 4
        ) as conversion_rate

    from sessions
    where not is_bot
    group by session_date

)

select * from final
order by session_date
