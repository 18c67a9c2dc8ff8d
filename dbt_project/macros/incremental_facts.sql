{#- How incremental facts write their new rows: MERGE on Snowflake, where it is the
    native upsert; delete+insert on Redshift, PostgreSQL and DuckDB, where it avoids
    MERGE's restrictions and is what the adapters do best. -#}
{% macro fact_incremental_strategy() -%}
    {{ return(adapter.dispatch('fact_incremental_strategy', 'shoplogs')()) }}
{%- endmacro %}

{% macro default__fact_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro snowflake__fact_incremental_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}


{#- On an incremental run, keep the rows whose `run_date_column` falls within
    `fact_lookback_days` of the newest run the fact already holds: late events and
    re-runs of recent days are picked up again, and their keys replaced. -#}
{% macro within_lookback(run_date_column) -%}
    {{ run_date_column }} >= {{ shoplogs.lookback_start(run_date_column) }}
{%- endmacro %}


{#- The first run date an incremental run re-reads: `fact_lookback_days` before the newest
    `run_date_column` the fact holds. -#}
{% macro lookback_start(run_date_column) -%}
    (
        select
            {{ dbt.dateadd('day', -1 * var('fact_lookback_days'),
                'coalesce(max(' ~ run_date_column ~ "), cast('1900-01-01' as date))") }}
        from {{ this }}
    )
{%- endmacro %}


{#- Rows of a fact whose customer key may have changed since it was written: the fact
    holds the customer as the unknown member, or a run in the lookback window brought a
    profile event of theirs (a late event can move the version boundary across an
    order). The model names `stg_shop__customer_events` in a `depends_on` comment. -#}
{% macro customer_rekeyed(run_date_column) -%}
    (
        customer_id in (
            select customer_id from {{ ref('stg_shop__customer_events') }}
            where run_date >= {{ shoplogs.lookback_start(run_date_column) }}
        )
        or customer_id in (
            select customer_id from {{ this }}
            where customer_key = '{{ var("unknown_customer_key") }}'
        )
    )
{%- endmacro %}
