{{ config(dist='all') }}

with

products as (

    select * from {{ ref('products') }}

),

final as (

    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(product_name as {{ dbt.type_string() }}) as product_name,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(brand as {{ dbt.type_string() }}) as brand,
        cast(list_price_usd as numeric(12, 2)) as list_price_usd

    from products

)

select * from final
