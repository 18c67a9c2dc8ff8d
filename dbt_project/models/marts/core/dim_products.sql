{{ config(dist='all') }}

with

products as (

    select * from {{ ref('products') }}

),

final as (

    select
        cast(product_id as {{ shoplogs.type_long_string() }}) as product_id,
        cast(product_name as {{ shoplogs.type_long_string() }}) as product_name,
        cast(category as {{ shoplogs.type_long_string() }}) as category,
        cast(brand as {{ shoplogs.type_long_string() }}) as brand,
        cast(list_price_usd as numeric(12, 2)) as list_price_usd

    from products

)

select * from final
