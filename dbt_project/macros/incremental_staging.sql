{#- Staging keeps the de-duplicated raw layer as tables, so a run reads only its own raw
    partitions instead of the whole history. A run for date D re-stages every run from D
    on (a nightly run: its own partition; a backfill: D and the runs after it, because a
    rewritten D can change which copy of a later resend wins) and keeps the earlier runs'
    rows. The earliest run's copy of an event wins, exactly as in a full refresh.
    Without a run date (a `dbt build` by hand) everything is re-staged. -#}
{% macro staging_window_start() -%}
    {%- set run_date = shoplogs.run_date() -%}
    {%- if run_date -%}
        cast('{{ run_date }}' as date)
    {%- else -%}
        cast('1900-01-01' as date)
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook: the staged rows of the runs being re-staged go first. -#}
{% macro delete_restaged_runs() -%}
    {%- if shoplogs.is_incremental() -%}
        delete from {{ this }} where run_date >= {{ shoplogs.staging_window_start() }}
    {%- endif -%}
{%- endmacro %}


{#- The raw partitions a run reads: `where` clause of the staging model's source CTE. -#}
{% macro restaged_partitions(partition_column='dt') -%}
    {%- if shoplogs.is_incremental() -%}
        where cast({{ partition_column }} as date) >= {{ shoplogs.staging_window_start() }}
    {%- endif -%}
{%- endmacro %}


{#- An event an earlier run already staged stays that run's: `where` clause of the final
    select (after the pre-hook, every staged row is from an earlier run). -#}
{% macro staged_earlier(key) -%}
    {%- if shoplogs.is_incremental() -%}
        where {{ key }} not in (select staged.{{ key }} from {{ this }} as staged)
    {%- endif -%}
{%- endmacro %}
