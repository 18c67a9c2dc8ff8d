{{ config(dist='all', sort=['date_day']) }}

-- One row per calendar day over the range the shop reports on (vars in dbt_project.yml).
with

days as (

    -- A spine without a query: dbt.date_spine asks the warehouse for the number of days,
    -- which would stop the project compiling offline for Snowflake and Redshift.
    {%- set first_day = "cast('" ~ var('dim_date_start') ~ "' as date)" %}
    {%- set day_count = shoplogs.days_between(var('dim_date_start'), var('dim_date_end')) %}
    select {{ dbt.dateadd('day', 'generated_number - 1', first_day) }} as date_day
    from ({{ dbt.generate_series(day_count) }}) as series

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
        cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start_date

    from days

)

select * from final
