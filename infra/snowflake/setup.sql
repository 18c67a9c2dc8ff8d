-- One-time setup of Snowflake for shoplogs, once per environment. Idempotent: run it again
-- after any change.
-- Run as a role that may create roles, warehouses, databases and integrations
-- (ACCOUNTADMIN, or SECURITYADMIN + SYSADMIN). Render it with
--   python -m infra.warehouse_setup snowflake > setup.rendered.sql
-- which fills ${...} from the environment (SNOWFLAKE_DATABASE, LAKE_BUCKET,
-- SNOWFLAKE_STORAGE_ROLE_ARN).

-- Roles: the pipeline loads and transforms; analysts read the marts.
create role if not exists shoplogs_transformer;
create role if not exists shoplogs_reporter;
grant role shoplogs_transformer to role sysadmin;
grant role shoplogs_reporter to role sysadmin;
-- Personal data (dbt_project/docs/privacy.md): analysts (shoplogs_reporter) read direct
-- identifiers masked; shoplogs_pii_reader reads them clear. The pipeline holds it: it
-- builds the marts from clear values and erases a customer by their email.
create role if not exists shoplogs_pii_reader;
grant role shoplogs_pii_reader to role shoplogs_transformer;
grant role shoplogs_pii_reader to role sysadmin;

-- Compute: small, suspended when idle.
create warehouse if not exists shoplogs_transform_wh
    warehouse_size = xsmall
    auto_suspend = 60
    auto_resume = true
    initially_suspended = true;
grant usage on warehouse shoplogs_transform_wh to role shoplogs_transformer;
grant usage on warehouse shoplogs_transform_wh to role shoplogs_reporter;

-- Storage: a database per environment (SHOPLOGS for prod, SHOPLOGS_DEV for dev:
-- orchestration/settings.snowflake_database), a schema per layer
-- (dbt_project/macros/generate_schema_name.sql). The integration is per environment too:
-- each environment has its own lake bucket.
create database if not exists ${SNOWFLAKE_DATABASE};
create schema if not exists ${SNOWFLAKE_DATABASE}.raw_data;
create schema if not exists ${SNOWFLAKE_DATABASE}.staging;
create schema if not exists ${SNOWFLAKE_DATABASE}.intermediate;
create schema if not exists ${SNOWFLAKE_DATABASE}.marts;
create schema if not exists ${SNOWFLAKE_DATABASE}.reference;
create schema if not exists ${SNOWFLAKE_DATABASE}.snapshots;
create schema if not exists ${SNOWFLAKE_DATABASE}.audit;
create schema if not exists ${SNOWFLAKE_DATABASE}.analytics;
grant usage on database ${SNOWFLAKE_DATABASE} to role shoplogs_transformer;
-- Builds outside prod (dbt's "<target schema>_<layer>" schemas) create their own schemas.
grant create schema on database ${SNOWFLAKE_DATABASE} to role shoplogs_transformer;
grant usage on database ${SNOWFLAKE_DATABASE} to role shoplogs_reporter;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.raw_data to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.staging to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.intermediate to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.marts to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.reference to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.snapshots to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.audit to role shoplogs_transformer;
grant all privileges on schema ${SNOWFLAKE_DATABASE}.analytics to role shoplogs_transformer;

-- The masking policy of every column the dbt project tags `pii: direct`: dbt sets it on
-- the marts' columns after each build (macros/privacy/mask_personal_data.sql), and it
-- follows them into every view. Owned here, not by the pipeline, which may apply it but
-- never change whom it unmasks for. The mask is the dbt var pii_mask.
create schema if not exists ${SNOWFLAKE_DATABASE}.governance;
create masking policy if not exists ${SNOWFLAKE_DATABASE}.governance.pii_direct
    as (val string) returns string ->
    case
        when is_role_in_session('SHOPLOGS_PII_READER') then val
        when val is null then null
        else '*****'
    end;
grant usage on schema ${SNOWFLAKE_DATABASE}.governance to role shoplogs_transformer;
grant apply on masking policy ${SNOWFLAKE_DATABASE}.governance.pii_direct
    to role shoplogs_transformer;
-- Analysts read what is in marts and audit now and what the pipeline builds there later.
-- Future grants on a schema cover objects any role creates in it, but tables and views
-- separately: marts holds views too (dim_customers_current).
grant usage on schema ${SNOWFLAKE_DATABASE}.marts to role shoplogs_reporter;
grant select on all tables in schema ${SNOWFLAKE_DATABASE}.marts to role shoplogs_reporter;
grant select on future tables in schema ${SNOWFLAKE_DATABASE}.marts to role shoplogs_reporter;
grant select on all views in schema ${SNOWFLAKE_DATABASE}.marts to role shoplogs_reporter;
grant select on future views in schema ${SNOWFLAKE_DATABASE}.marts to role shoplogs_reporter;
grant usage on schema ${SNOWFLAKE_DATABASE}.audit to role shoplogs_reporter;
grant select on all tables in schema ${SNOWFLAKE_DATABASE}.audit to role shoplogs_reporter;
grant select on future tables in schema ${SNOWFLAKE_DATABASE}.audit to role shoplogs_reporter;

-- The lake: a storage integration (its IAM role trusts Snowflake's user; see infra/README.md),
-- the Parquet file format, and the external stage on the processed zone that load_raw
-- copies from.
create storage integration if not exists ${SNOWFLAKE_DATABASE}_lake
    type = external_stage
    storage_provider = 's3'
    enabled = true
    storage_aws_role_arn = '${SNOWFLAKE_STORAGE_ROLE_ARN}'
    storage_allowed_locations = ('s3://${LAKE_BUCKET}/processed/');
grant usage on integration ${SNOWFLAKE_DATABASE}_lake to role shoplogs_transformer;

-- use_logical_type: Spark writes timestamps as Parquet logical types; without it they
-- load as raw integers.
create file format if not exists ${SNOWFLAKE_DATABASE}.raw_data.parquet_files
    type = parquet
    use_logical_type = true;

create stage if not exists ${SNOWFLAKE_DATABASE}.raw_data.processed_zone
    url = '${SNOWFLAKE_STAGE_URL}'
    storage_integration = ${SNOWFLAKE_DATABASE}_lake
    file_format = ${SNOWFLAKE_DATABASE}.raw_data.parquet_files;
grant usage on stage ${SNOWFLAKE_DATABASE}.raw_data.processed_zone to role shoplogs_transformer;
grant usage on file format ${SNOWFLAKE_DATABASE}.raw_data.parquet_files to role shoplogs_transformer;

-- The user the pipeline connects as (key-pair auth; set RSA_PUBLIC_KEY once by hand).
create user if not exists shoplogs_pipeline
    default_role = shoplogs_transformer
    default_warehouse = shoplogs_transform_wh
    type = service;
grant role shoplogs_transformer to user shoplogs_pipeline;
