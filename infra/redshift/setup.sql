-- One-time setup of a Redshift database for shoplogs (provisioned cluster or Serverless
-- workgroup; infra/ creates those). Idempotent: run it again after any change.
-- Run as a superuser in the shoplogs database. Render it with
--   python -m infra.warehouse_setup redshift > setup.rendered.sql
-- which fills ${...} from the environment (GLUE_DATABASE, REDSHIFT_SPECTRUM_ROLE_ARN,
-- REDSHIFT_PIPELINE_USER; SHOPLOGS_ENV names the last: IAMR:shoplogs-<env>-mwaa).

-- Redshift has no CREATE GROUP IF NOT EXISTS: this procedure makes it idempotent.
create or replace procedure shoplogs_ensure_group(group_name varchar(128))
as $$
begin
    if not exists (select 1 from pg_group where groname = group_name) then
        execute 'create group ' || quote_ident(group_name);
    end if;
end;
$$ language plpgsql;

call shoplogs_ensure_group('shoplogs_transformers');
call shoplogs_ensure_group('shoplogs_reporters');

-- The pipeline's user. With IAM auth on Serverless (GetCredentials) the MWAA execution role
-- logs in as IAMR:<role name> (orchestration/settings.redshift_pipeline_user); Redshift would
-- create that user at its first login, with PUBLIC's privileges only. Made here, it logs in
-- as a transformer from the first run, and only with IAM's temporary credentials.
-- Quoted, a user name keeps its case on Redshift whatever enable_case_sensitive_identifier says.
create or replace procedure shoplogs_ensure_user(user_name varchar(128))
as $$
begin
    if not exists (select 1 from pg_user where usename = user_name) then
        execute 'create user ' || quote_ident(user_name) || ' password disable';
    end if;
end;
$$ language plpgsql;

create or replace procedure shoplogs_ensure_member(group_name varchar(128), user_name varchar(128))
as $$
begin
    if not exists (
        select 1 from pg_group, pg_user
        where groname = group_name and usename = user_name and usesysid = any(grolist)
    ) then
        execute 'alter group ' || quote_ident(group_name) || ' add user ' || quote_ident(user_name);
    end if;
end;
$$ language plpgsql;

call shoplogs_ensure_user('${REDSHIFT_PIPELINE_USER}');
call shoplogs_ensure_member('shoplogs_transformers', '${REDSHIFT_PIPELINE_USER}');

-- A schema per layer (dbt_project/macros/generate_schema_name.sql).
create schema if not exists raw_data;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists reference;
create schema if not exists snapshots;
create schema if not exists audit;
create schema if not exists analytics;

-- Builds outside prod (dbt's "<target schema>_<layer>" schemas) create their own schemas.
grant create on database shoplogs to group shoplogs_transformers;
grant usage, create on schema raw_data to group shoplogs_transformers;
grant usage, create on schema staging to group shoplogs_transformers;
grant usage, create on schema intermediate to group shoplogs_transformers;
grant usage, create on schema marts to group shoplogs_transformers;
grant usage, create on schema reference to group shoplogs_transformers;
grant usage, create on schema snapshots to group shoplogs_transformers;
grant usage, create on schema audit to group shoplogs_transformers;
grant usage, create on schema analytics to group shoplogs_transformers;

-- Analysts read the marts and the stored test failures: what is there now, and what the
-- pipeline's user builds from now on. Default privileges belong to the user who creates the
-- object (without FOR USER, only this admin's); Redshift has no FOR GROUP, so they are set
-- for the user dbt runs as. ON TABLES covers views too.
grant usage on schema marts to group shoplogs_reporters;
grant usage on schema audit to group shoplogs_reporters;
grant select on all tables in schema marts to group shoplogs_reporters;
grant select on all tables in schema audit to group shoplogs_reporters;
alter default privileges for user "${REDSHIFT_PIPELINE_USER}" in schema marts
    grant select on tables to group shoplogs_reporters;
alter default privileges for user "${REDSHIFT_PIPELINE_USER}" in schema audit
    grant select on tables to group shoplogs_reporters;

-- Optional: Redshift Spectrum over the Glue Data Catalog the pipeline registers each run
-- in (lake/catalog.py), to query the processed zone in place.
create external schema if not exists spectrum
    from data catalog
    database '${GLUE_DATABASE}'
    iam_role '${REDSHIFT_SPECTRUM_ROLE_ARN}';
grant usage on schema spectrum to group shoplogs_transformers;
