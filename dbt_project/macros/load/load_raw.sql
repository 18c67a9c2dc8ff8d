{#- Load one run's partition of the processed zone into the raw schema, for every source table.

    The pipeline runs this after it promotes a run (orchestration/warehouse_load.py):
        dbt run-operation load_raw --args '{run_date: "2026-11-21", files: {customers: [...]},
                                            locations: {customers: {uri: ..., stage_path: ...}}}'
    `files` lists, per table, the Parquet objects the run published (from the run manifest):
    the partition as it is now. `locations` says where each table's partition lies, as
    lake/layout.py builds it: its S3 URI and its path below the Snowflake stage. Loading the same partition twice leaves the same rows; a
    partition that was rewritten by a re-run replaces the rows of the old one.
    `dry_run: true` prints the SQL instead of running it (CI lints it per dialect).

    One implementation per warehouse: snowflake__ (COPY INTO from an external stage),
    redshift__ (COPY from S3 through a staging table), postgres__ (the Redshift stand-in in
    CI; its staging table is filled by the emulator load) and duckdb__ (nothing to load). -#}
{% macro load_raw(run_date, files={}, locations={}, dry_run=false) %}
    {%- set run_date = shoplogs.checked_run_date(run_date) -%}
    {%- for source in graph.sources.values() | sort(attribute='unique_id')
        if source.package_name == project_name -%}
        {%- set relation = api.Relation.create(
            database=source.database, schema=source.schema, identifier=source.identifier) -%}
        {%- set columns = source.columns.values() | list -%}
        {%- set table_files = files.get(source.name, []) | sort -%}
        {%- set location = locations.get(source.name) -%}
        {%- if table_files and not location -%}
            {{ exceptions.raise_compiler_error(
                "load_raw: no location for table " ~ source.name ~ "; pass `locations` as "
                ~ "orchestration/warehouse_load.py does (lake/layout.py builds them)") }}
        {%- endif -%}
        {%- do shoplogs.load_raw_partition(
            relation, columns, run_date, table_files, dry_run, location) -%}
    {%- endfor -%}
{% endmacro %}


{#- The run date given on the command line (`how`: --args or --vars), as YYYY-MM-DD; any
    other text stops the command with an error naming it. -#}
{% macro checked_run_date(run_date, how="--args") %}
    {%- set text = run_date | string -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error(
            "run_date " ~ (text | tojson) ~ " is not a date; pass it as YYYY-MM-DD, "
            ~ "e.g. " ~ how ~ " '{run_date: \"2026-11-21\"}'") }}
    {%- endif -%}
    {{ return(modules.datetime.date.fromisoformat(text).isoformat()) }}
{% endmacro %}


{% macro load_raw_partition(relation, columns, run_date, files, dry_run, location) %}
    {{ return(adapter.dispatch('load_raw_partition', 'shoplogs')(
        relation, columns, run_date, files, dry_run, location)) }}
{% endmacro %}


{% macro duckdb__load_raw_partition(relation, columns, run_date, files, dry_run, location) %}
    {%- do log("DuckDB reads the processed zone in place (source external_location): "
        ~ "nothing to load for " ~ relation.identifier, info=True) -%}
{% endmacro %}


{% macro default__load_raw_partition(relation, columns, run_date, files, dry_run, location) %}
    {{ exceptions.raise_compiler_error(
        "load_raw has no implementation for " ~ target.type
        ~ "; add a " ~ target.type ~ "__load_raw_partition macro in macros/load/") }}
{% endmacro %}


{#- Snowflake: COPY INTO from the external stage on the processed zone (infra/snowflake).
    The partition is replaced whole, in one transaction: delete the day's rows, then COPY
    exactly the run's files (`files = (...)`, from the run manifest) with `force = true`.
    Neither step leans on Snowflake's load metadata, which forgets a file after 64 days:
    re-loading a day, however old, gives the same rows. MATCH_BY_COLUMN_NAME fills a column
    missing from the files with NULL, so the staged files' columns are checked first
    (INFER_SCHEMA) and a missing or renamed column stops the load. -#}
{% macro snowflake__load_raw_partition(relation, columns, run_date, files, dry_run, location) %}
    {%- set log_relation = shoplogs.load_log_relation(relation) -%}
    {%- set stage_location = '@' ~ var('snowflake_stage') ~ '/' ~ location.stage_path
        if location else none -%}
    {%- set setup_sql -%}
        create schema if not exists {{ relation.schema }};
        {{ shoplogs.create_raw_table_sql(relation, columns) }};
        {{ shoplogs.add_missing_columns_sql(relation, columns, dry_run) }}
        {{ shoplogs.create_load_log_sql(log_relation) }};
    {%- endset -%}
    {%- set check_sql = shoplogs.staged_columns_sql(stage_location, files) if files else '' -%}
    {%- set load_sql -%}
        begin;
        delete from {{ relation }} where dt = '{{ run_date }}';
        {% if files -%}
        copy into {{ relation }}
            from {{ stage_location }}
            files = ({% for file in files %}'{{ file }}'{{ ", " if not loop.last }}{% endfor %})
            file_format = (format_name = '{{ var("snowflake_file_format") }}')
            match_by_column_name = case_insensitive
            force = true;
        -- The partition lives in the path, not in the files.
        update {{ relation }} set dt = '{{ run_date }}' where dt is null;
        {% endif -%}
        {{ shoplogs.record_load_sql(log_relation, relation, run_date, local_md5(files | join(',')), files) }};
        commit;
    {%- endset -%}
    {%- if dry_run -%}
        {%- do shoplogs.run_or_print(relation, setup_sql ~ '\n' ~ check_sql ~ (';\n' if check_sql else '') ~ load_sql, true) -%}
    {%- else -%}
        {%- do run_query(setup_sql) -%}
        {%- if files -%}
            {%- do shoplogs.check_staged_columns(
                relation, columns, shoplogs.staged_columns(check_sql), stage_location) -%}
        {%- endif -%}
        {%- do shoplogs.run_or_print(relation, load_sql, false) -%}
    {%- endif -%}
{% endmacro %}


{#- The columns of the staged files, one row per column (INFER_SCHEMA reads the Parquet
    footers of exactly these files). -#}
{% macro staged_columns_sql(stage_location, files) %}
    {%- set file_list -%}
        {% for file in files %}'{{ file }}'{{ ", " if not loop.last }}{% endfor %}
    {%- endset -%}
    select column_name
    from table(infer_schema(
        location => '{{ stage_location }}',
        file_format => '{{ var("snowflake_file_format") }}',
        files => ({{ file_list }})
    ))
{%- endmacro %}


{% macro staged_columns(check_sql) %}
    {{ return(adapter.dispatch('staged_columns', 'shoplogs')(check_sql)) }}
{% endmacro %}


{% macro default__staged_columns(check_sql) %}
    {{ return(run_query(check_sql).columns[0].values() | list) }}
{% endmacro %}


{#- Every column the source declares must be in the files; a missing or renamed one would
    load as NULL. Only a column added after the table's first release (`meta: added_later`)
    may be absent: files written before it load it as NULL, as its meaning is. Names compare
    case-insensitively, as MATCH_BY_COLUMN_NAME does. -#}
{% macro check_staged_columns(relation, columns, staged, where) %}
    {%- if staged is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = staged | map('lower') | list -%}
    {%- set missing = [] -%}
    {%- for column in shoplogs.file_columns(columns)
        if column.name | lower not in found and not shoplogs.added_later(column) -%}
        {%- do missing.append(column.name | lower) -%}
    {%- endfor -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(
            "load_raw: " ~ relation ~ ": the files in " ~ where ~ " lack the column(s) "
            ~ missing | join(', ') ~ " (found: " ~ found | sort | join(', ') ~ "); a renamed "
            ~ "or dropped column would load as NULL. Fix the Spark job's output or the "
            ~ "source's columns in models/staging/") }}
    {%- endif -%}
{% endmacro %}


{#- Redshift: COPY ... FORMAT AS PARQUET into a staging table, then delete+insert of the
    partition in one transaction (Redshift has no load de-duplication of its own). -#}
{% macro redshift__load_raw_partition(relation, columns, run_date, files, dry_run, location) %}
    {%- set log_relation = shoplogs.load_log_relation(relation) -%}
    {%- set incoming = relation.identifier ~ '__incoming' -%}
    {%- set file_columns = shoplogs.file_columns(columns) -%}
    {%- set sql -%}
        create schema if not exists {{ relation.schema }};
        {{ shoplogs.create_raw_table_sql(relation, columns) }}
            diststyle auto
            sortkey (dt);
        {{ shoplogs.add_missing_columns_sql(relation, columns, dry_run) }}
        {{ shoplogs.create_load_log_sql(log_relation) }};
        create temp table {{ incoming }} (
            {%- for column in file_columns %}
            {{ column.name }} {{ shoplogs.raw_column_type(column.data_type) }}{{ "," if not loop.last }}
            {%- endfor %}
        );
        {% if files -%}
        copy {{ incoming }}
            from '{{ location.uri }}'
            iam_role '{{ var("redshift_copy_role_arn") }}'
            format as parquet;
        {% endif -%}
        {{ shoplogs.swap_partition_sql(relation, incoming, columns, run_date, log_relation, files) }}
    {%- endset -%}
    {%- do shoplogs.run_or_print(relation, sql, dry_run) -%}
{% endmacro %}


{#- PostgreSQL stands in for Redshift in CI and cannot read Parquet from S3: the emulator
    load (orchestration/warehouse_load.py) fills `<table>__incoming` with the partition's
    rows; from there on this is Redshift's transaction, statement for statement. -#}
{% macro postgres__load_raw_partition(relation, columns, run_date, files, dry_run, location) %}
    {%- set log_relation = shoplogs.load_log_relation(relation) -%}
    {%- set incoming = relation.incorporate(path={'identifier': relation.identifier ~ '__incoming'}) -%}
    {%- set sql -%}
        create schema if not exists {{ relation.schema }};
        {{ shoplogs.create_raw_table_sql(relation, columns) }};
        {{ shoplogs.add_missing_columns_sql(relation, columns, dry_run) }}
        {{ shoplogs.create_load_log_sql(log_relation) }};
        {% if files -%}
        {#- The emulator load made the staging table from the files' own columns. -#}
        {%- set staged = none if dry_run else adapter.get_columns_in_relation(incoming)
            | map(attribute='name') | map('lower') | list -%}
        {{ shoplogs.swap_partition_sql(
            relation, incoming, columns, run_date, log_relation, files, staged) }}
        {%- else -%}
        {#- The run published no file for this table (nothing staged): the partition is empty. -#}
        begin;
        delete from {{ relation }} where dt = '{{ run_date }}';
        {{ shoplogs.record_load_sql(log_relation, relation, run_date, local_md5(''), files) }};
        commit
        {%- endif %}
    {%- endset -%}
    {%- do shoplogs.run_or_print(relation, sql, dry_run) -%}
{% endmacro %}


{#- `staged`: the staging table's columns, when known; a column added later that the files
    lack (a partition written before it) stays NULL. -#}
{% macro swap_partition_sql(relation, incoming, columns, run_date, log_relation, files, staged=none) %}
    {%- set file_columns = [] -%}
    {%- for column in shoplogs.file_columns(columns)
        if staged is none or column.name | lower in staged or not shoplogs.added_later(column) -%}
        {%- do file_columns.append(column) -%}
    {%- endfor -%}
    begin;
    delete from {{ relation }} where dt = '{{ run_date }}';
    insert into {{ relation }} (
        {%- for column in file_columns %}{{ column.name }}, {% endfor %}dt)
    select
        {%- for column in file_columns %}
        {{ column.name }},
        {%- endfor %}
        cast('{{ run_date }}' as date)
    from {{ incoming }};
    {{ shoplogs.record_load_sql(log_relation, relation, run_date, local_md5(files | join(',')), files) }};
    drop table {{ incoming }};
    commit
{% endmacro %}


{#- The columns inside the Parquet files: all but the `dt` partition column. -#}
{% macro file_columns(columns) %}
    {{ return(columns | rejectattr('name', 'equalto', 'dt') | list) }}
{% endmacro %}


{% macro create_raw_table_sql(relation, columns) %}
    create table if not exists {{ relation }} (
        {%- for column in columns %}
        {{ column.name }} {{ shoplogs.raw_column_type(column.data_type) }}{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}


{#- Source columns declare portable types (string, timestamp, integer, ...); this spells
    them for the warehouse at hand. -#}
{% macro raw_column_type(data_type) %}
    {%- set kind = data_type | lower -%}
    {%- if kind == 'string' -%} {{ shoplogs.type_long_string() }}
    {%- elif kind == 'timestamp' -%} {{ dbt.type_timestamp() }}
    {%- elif kind == 'integer' -%} {{ dbt.type_int() }}
    {%- elif kind == 'bigint' -%} {{ dbt.type_bigint() }}
    {%- elif kind == 'boolean' -%} {{ dbt.type_boolean() }}
    {%- else -%} {{ kind }}
    {%- endif -%}
{% endmacro %}


{% macro load_log_relation(relation) %}
    {{ return(relation.incorporate(path={'identifier': 'load_log'})) }}
{% endmacro %}


{% macro create_load_log_sql(log_relation) %}
    create table if not exists {{ log_relation }} (
        table_name {{ dbt.type_string() }},
        dt date,
        files_md5 {{ dbt.type_string() }},
        file_count integer,
        loaded_at {{ dbt.type_timestamp() }}
    )
{%- endmacro %}


{% macro record_load_sql(log_relation, relation, run_date, fingerprint, files) %}
    delete from {{ log_relation }}
        where table_name = '{{ relation.identifier | lower }}' and dt = '{{ run_date }}';
    insert into {{ log_relation }} (table_name, dt, files_md5, file_count, loaded_at)
        values ('{{ relation.identifier | lower }}', '{{ run_date }}', '{{ fingerprint }}',
                {{ files | length }}, {{ dbt.current_timestamp() }})
{%- endmacro %}


{% macro run_or_print(relation, sql, dry_run) %}
    {%- if dry_run -%}
        {{ print("-- load_raw: " ~ relation ~ "\n" ~ sql) }}
    {%- else -%}
        {%- do run_query(sql) -%}
        {%- do log("loaded " ~ relation, info=True) -%}
    {%- endif -%}
{% endmacro %}


{#- A column added to a source after its table's first release (`meta: {added_later: true}`). -#}
{% macro added_later(column) %}
    {%- set meta = (column.config or {}).get('meta') or column.meta or {} -%}
    {{ return(meta.get('added_later', false)) }}
{% endmacro %}


{#- A raw table made by an earlier release lacks the columns added since: add them, so the
    load of a new partition finds them (and one of an old partition leaves them NULL). -#}
{% macro add_missing_columns_sql(relation, columns, dry_run) %}
    {{ return(adapter.dispatch('add_missing_columns_sql', 'shoplogs')(relation, columns, dry_run)) }}
{% endmacro %}


{#- Snowflake and PostgreSQL: `add column if not exists`, idempotent and one statement each. -#}
{% macro default__add_missing_columns_sql(relation, columns, dry_run) %}
    {%- for column in columns if shoplogs.added_later(column) %}
        alter table {{ relation }} add column if not exists
            {{ column.name }} {{ shoplogs.raw_column_type(column.data_type) }};
    {%- endfor %}
{% endmacro %}


{#- Redshift has no `add column if not exists`: the table's columns are looked up, and only
    the missing ones are added (one column per alter table, as Redshift requires). -#}
{% macro redshift__add_missing_columns_sql(relation, columns, dry_run) %}
    {%- if dry_run or adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) is none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(relation)
        | map(attribute='name') | map('lower') | list -%}
    {%- for column in columns if column.name | lower not in existing %}
        alter table {{ relation }} add column
            {{ column.name }} {{ shoplogs.raw_column_type(column.data_type) }};
    {%- endfor %}
{% endmacro %}
