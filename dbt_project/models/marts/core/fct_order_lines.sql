with

order_lines as (

    select * from {{ ref('int_order_lines_priced') }}

),

final as (

    select
        order_line_id,
        order_id,
        product_id,
        customer_id,
        cast(ordered_at as date) as order_date,
        line_number,
        currency_code,
        quantity,
        unit_price,
        line_amount,
        line_amount_usd

    from order_lines

)

select * from final
