{{ config(dist='all', sort=['date_day']) }}

-- One row per calendar day from the earliest to the latest day the facts hold, widened by
-- `dim_date_margin_days` on each side: logs from 2015 or from 2035 find their day, and the
-- range follows the data on every rebuild.
with

orders as (

    select * from {{ ref('int_orders_statuses_pivoted') }}

),

sessions as (

    select * from {{ ref('int_web_sessions_aggregated') }}

),

fact_days as (

    select cast(ordered_at as date) as fact_day from orders
    union all
    select cast(started_at as date) as fact_day from sessions

),

bounds as (

    -- With no facts yet the range is centred on a fixed day, never on the clock.
    select
        {{ dbt.dateadd('day', -1 * var('dim_date_margin_days') | int,
            "coalesce(min(fact_day), cast('" ~ var('dim_date_empty_day') ~ "' as date))") }}
            as first_day,
        {{ dbt.dateadd('day', var('dim_date_margin_days') | int,
            "coalesce(max(fact_day), cast('" ~ var('dim_date_empty_day') ~ "' as date))") }}
            as last_day

    from fact_days

),

numbers as (

    -- A fixed-size series (2^16 days, about 179 years) cut to the bounds below: its size is
    -- known while compiling, so the project still compiles offline for every warehouse.
    {{ dbt.generate_series(65536) }}

),

{#- Redshift's generate_series yields double precision (power(2, i)) and its DATEADD takes
    only an integer: cast, so no warehouse depends on an implicit conversion. -#}
{%- set day_offset = 'cast(numbers.generated_number - 1 as integer)' %}

days as (

    select
        cast(
            {{ dbt.dateadd('day', day_offset, 'bounds.first_day') }} as date
        ) as date_day

    from numbers
    cross join bounds
    where
        numbers.generated_number - 1
        <= {{ dbt.datediff('bounds.first_day', 'bounds.last_day', 'day') }}

),

final as (

    select
        cast(date_day as date) as date_day,
        cast(extract(year from date_day) as integer) as calendar_year,
        cast(extract(quarter from date_day) as integer) as calendar_quarter,
        cast(extract(month from date_day) as integer) as calendar_month,
        cast(extract(day from date_day) as integer) as day_of_month,
        {{ day_of_week_iso('date_day') }} as day_of_week_iso,
        {{ day_of_week_iso('date_day') }} >= 6 as is_weekend,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        -- The ISO week's Monday, spelled out: Snowflake's date_trunc('week') follows the
        -- account's WEEK_START parameter.
        cast(
            {{ dbt.dateadd('day', '1 - ' ~ day_of_week_iso('date_day'), 'date_day') }} as date
        ) as week_start_date

    from days

)

select * from final
