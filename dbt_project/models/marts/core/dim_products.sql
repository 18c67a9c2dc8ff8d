with

products as (

    select * from {{ ref('products') }}

),

final as (

    select
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        product_name,
        category,
        brand,
        cast(list_price_usd as numeric(12, 2)) as list_price_usd

    from products

)

select * from final
