{{ config(materialized='view') }}

-- Each customer's profile today (and the unknown member): dim_customers filtered on
-- is_current, for analysts who want one row per customer.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select * from customers
    where is_current

)

select * from final
