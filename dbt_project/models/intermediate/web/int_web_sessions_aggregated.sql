-- One row per session: its span, its size and where it entered and left the site.
with

requests as (

    select * from {{ ref('stg_web__requests') }}

),

page_views_ranked as (

    select
        session_id,
        request_path,
        row_number() over (
            partition by session_id order by request_at asc, request_id asc
        ) as first_rank,
        row_number() over (
            partition by session_id order by request_at desc, request_id desc
        ) as last_rank

    from requests
    where is_page_view

),

entry_and_exit as (

    select
        session_id,
        max(case when first_rank = 1 then request_path end) as landing_page,
        max(case when last_rank = 1 then request_path end) as exit_page

    from page_views_ranked
    group by session_id

),

requests_ranked as (

    select
        session_id,
        referrer,
        row_number() over (
            partition by session_id order by request_at asc, request_id asc
        ) as first_rank

    from requests

),

entry_referrers as (

    select
        session_id,
        referrer as entry_referrer

    from requests_ranked
    where first_rank = 1

),

aggregated as (

    select
        session_id,
        max(visitor_id) as visitor_id,
        min(request_at) as started_at,
        max(request_at) as ended_at,
        count(*) as request_count,
        sum(case when is_page_view then 1 else 0 end) as page_view_count,
        sum(bytes_sent) as bytes_sent,
        {{ dbt.bool_or('is_bot') }} as is_bot,
        -- Null when the server's format logs no request time.
        avg(request_time_us) / 1000.0 as avg_request_duration_ms,
        -- The order the visit confirmed: the shop's confirmation page carries its id
        -- (docs/data-contract.md); the latest one if a visit placed several.
        max({{ shoplogs.confirmed_order_id() }}) as confirmed_order_id,
        min(run_date) as first_run_date,
        max(run_date) as run_date

    from requests
    group by session_id

),

converting as (

    -- An order converts one session, the earliest that confirmed it: a reload of the
    -- confirmation page days later is no second conversion.
    select
        session_id,
        row_number() over (
            partition by confirmed_order_id order by started_at asc, session_id asc
        ) as conversion_rank

    from aggregated
    where confirmed_order_id is not null

),

final as (

    select
        aggregated.session_id,
        aggregated.visitor_id,
        aggregated.started_at,
        aggregated.ended_at,
        {{ dbt.datediff('aggregated.started_at', 'aggregated.ended_at', 'second') }}
            as duration_seconds,
        aggregated.request_count,
        aggregated.page_view_count,
        aggregated.bytes_sent,
        aggregated.is_bot,
        aggregated.avg_request_duration_ms,
        aggregated.confirmed_order_id,
        case
            when converting.conversion_rank = 1 then aggregated.confirmed_order_id
        end as order_id,
        entry_referrers.entry_referrer,
        entry_and_exit.landing_page,
        entry_and_exit.exit_page,
        aggregated.first_run_date,
        aggregated.run_date

    from aggregated
    left join entry_referrers
        on aggregated.session_id = entry_referrers.session_id
    left join entry_and_exit
        on aggregated.session_id = entry_and_exit.session_id
    left join converting
        on aggregated.session_id = converting.session_id

)

select * from final
