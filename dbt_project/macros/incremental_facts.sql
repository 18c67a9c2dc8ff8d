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


{#- The run dates an incremental build replaces. The pipeline passes its run date
    (`shoplogs.run_date()`) and exactly that run is replaced, however old:
    a re-run or a backfill of any day. Without it (a `dbt build` by hand) the window is
    every run from `fact_lookback_days` before the newest one the fact holds. -#}
{% macro run_window_start(fact_run_date_column) -%}
    {%- set run_date = shoplogs.run_date() -%}
    {%- if run_date -%}
        cast('{{ run_date }}' as date)
    {%- else -%}
        (
            select
                {{ dbt.dateadd('day', -1 * var('fact_lookback_days'),
                    'coalesce(max(' ~ fact_run_date_column ~ "), cast('1900-01-01' as date))") }}
            from {{ this }}
        )
    {%- endif -%}
{%- endmacro %}

{% macro run_window_end() -%}
    {%- set run_date = shoplogs.run_date() -%}
    {%- if run_date -%}
        cast('{{ run_date }}' as date)
    {%- else -%}
        cast('9999-12-31' as date)
    {%- endif -%}
{%- endmacro %}

{#- `column` lies in the window; `fact_run_date_column` is the fact's own run-date column
    the window falls back on. -#}
{% macro in_run_window(column, fact_run_date_column) -%}
    {{ column }} between {{ shoplogs.run_window_start(fact_run_date_column) }}
    and {{ shoplogs.run_window_end() }}
{%- endmacro %}


{#- The customers whose orders an incremental build recomputes: the unit of work is the
    customer, because an order's customer version and its number among the customer's
    orders depend on the customer's other events. A customer is affected when a run in
    the window brought (or, rewritten, took away) one of their order or profile events,
    or an order of theirs still waits on the unknown member, or points at a version that
    no longer exists. Models name both staging models in `depends_on` comments. -#}
{% macro affected_customers() -%}
    (
        select customer_id from {{ ref('stg_shop__order_events') }}
        where {{ shoplogs.in_run_window('run_date', 'last_run_date') }}
        union
        select customer_id from {{ ref('stg_shop__customer_events') }}
        where {{ shoplogs.in_run_window('run_date', 'last_run_date') }}
        union
        select customer_id from {{ this }}
        where
            first_run_date <= {{ shoplogs.run_window_end() }}
            and last_run_date >= {{ shoplogs.run_window_start('last_run_date') }}
        union
        select customer_id from {{ this }}
        where
            customer_key = '{{ var("unknown_customer_key") }}'
            or customer_key not in (
                select customer_key from {{ ref('int_customer_profiles_versioned') }}
            )
    )
{%- endmacro %}


{#- Post-hook of a fact recomputed by customer: delete the rows of affected customers whose
    key no longer exists upstream (a rewritten run dropped the order or the line); the
    merge only replaces keys that still exist. -#}
{% macro delete_vanished(key, upstream) -%}
    {%- if shoplogs.is_incremental() -%}
        delete from {{ this }}
        where
            customer_id in {{ shoplogs.affected_customers() }}
            and {{ key }} not in (select {{ key }} from {{ upstream }})
    {%- endif -%}
{%- endmacro %}


{#- The sessions an incremental fct_web_sessions recomputes: a session is the sum of its
    requests over every run that brought some, so each run in the window that contributed
    requests re-keys it (a backfill of the first of two runs a visit spans included), as
    does a run the fact says contributed (its requests may be gone now). A session sharing a
    confirmed order with one of those is recomputed too: which of them converts may move. -#}
{% macro affected_sessions() -%}
    {%- set touched -%}
        select session_id from {{ ref('stg_web__requests') }}
        where {{ shoplogs.in_run_window('run_date', 'run_date') }}
        union
        select session_id from {{ this }}
        where
            first_run_date <= {{ shoplogs.run_window_end() }}
            and run_date >= {{ shoplogs.run_window_start('run_date') }}
    {%- endset -%}
    (
        {{ touched }}
        union
        select session_id from {{ ref('stg_web__requests') }}
        where {{ shoplogs.confirmed_order_id() }} in (
            select {{ shoplogs.confirmed_order_id() }} from {{ ref('stg_web__requests') }}
            where session_id in ({{ touched }})
            union
            select order_id from {{ this }}
            where session_id in ({{ touched }})
        )
    )
{%- endmacro %}


{#- The order a request confirmed: the id on the shop's confirmation page (the var
    `order_confirmation_path`, docs/data-contract.md), else null. -#}
{% macro confirmed_order_id(path='request_path', status='status_code') -%}
    case
        when
            {{ status }} = 200
            and {{ path }} like '{{ var("order_confirmation_path") }}%'
            then {{ dbt.split_part(dbt.split_part(path, "'order_id='", 2), "'&'", 1) }}
    end
{%- endmacro %}


{#- Post-hook of fct_web_sessions: the affected sessions that no longer exist upstream (a
    rewritten run held all their requests) go. -#}
{% macro delete_vanished_sessions() -%}
    {%- if shoplogs.is_incremental() -%}
        delete from {{ this }}
        where
            session_id in {{ shoplogs.affected_sessions() }}
            and session_id not in (
                select session_id from {{ ref('int_web_sessions_aggregated') }}
            )
    {%- endif -%}
{%- endmacro %}
