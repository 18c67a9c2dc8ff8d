-- An order's total (in its currency and in US dollars) and line count equal the sum of its
-- lines in fct_order_lines. Rows returned fail.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

line_totals as (

    select
        order_id,
        count(*) as line_count,
        -- Cast as the facts store them: a sum of decimals may come back as a float.
        cast(sum(line_amount) as numeric(18, 2)) as order_total,
        cast(sum(line_amount_usd) as numeric(18, 2)) as order_total_usd

    from order_lines
    group by order_id

),

final as (

    select
        orders.order_id,
        orders.order_total,
        line_totals.order_total as lines_total

    from orders
    left join line_totals
        on orders.order_id = line_totals.order_id
    where
        orders.line_count != coalesce(line_totals.line_count, 0)
        or coalesce(orders.order_total, 0) != coalesce(line_totals.order_total, 0)
        or coalesce(orders.order_total_usd, 0) != coalesce(line_totals.order_total_usd, 0)

)

select * from final
