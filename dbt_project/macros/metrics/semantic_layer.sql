{#- The semantic layer's definitions (models/marts/*/_*__metrics.yml) as SQL, so that the
    analyses aggregate exactly what the metrics do: each measure and metric is written once,
    in the YAML, and read from the project's graph here. -#}

{#- `<agg>(<expr>)` of the measure `name` over the rows of its semantic model's mart. -#}
{% macro measure(name) -%}
    {%- if not execute -%}
        {{- return('null') -}}
    {%- endif -%}
    {%- set found = [] -%}
    {%- for semantic_model in graph.semantic_models.values() -%}
        {%- for measure in semantic_model.measures if measure.name == name -%}
            {%- do found.append(measure) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if found | length != 1 -%}
        {{- exceptions.raise_compiler_error(
            "shoplogs.measure: no measure named '" ~ name ~ "' in the semantic models "
            ~ "(models/marts/*/_*__metrics.yml); check the name") -}}
    {%- endif -%}
    {%- set measure = found[0] -%}
    {%- set expression = measure.expr or measure.name -%}
    {%- set aggregations = {
        'sum': 'sum(' ~ expression ~ ')',
        'count': 'count(' ~ expression ~ ')',
        'count_distinct': 'count(distinct ' ~ expression ~ ')',
        'min': 'min(' ~ expression ~ ')',
        'max': 'max(' ~ expression ~ ')',
        'average': 'avg(' ~ expression ~ ')',
    } -%}
    {%- if measure.agg not in aggregations -%}
        {{- exceptions.raise_compiler_error(
            "shoplogs.measure: the aggregation '" ~ measure.agg ~ "' of measure '" ~ name
            ~ "' has no SQL here; add it to macros/metrics/semantic_layer.sql") -}}
    {%- endif -%}
    {{- return(aggregations[measure.agg]) -}}
{%- endmacro %}

{#- The metric `name` as one SQL expression over its mart's rows: a simple metric is its
    measure, a ratio `1.0 * numerator / nullif(denominator, 0)` (as MetricFlow divides). A
    derived metric's expression names its input metrics: the caller selects them as columns
    of those names first; `over_columns=true` reads a ratio's inputs from such columns too
    (after the caller has aggregated them). -#}
{% macro metric_sql(name, over_columns=false) -%}
    {%- if not execute -%}
        {{- return('null') -}}
    {%- endif -%}
    {%- set found = graph.metrics.values() | selectattr('name', 'equalto', name) | list -%}
    {%- if found | length != 1 -%}
        {{- exceptions.raise_compiler_error(
            "shoplogs.metric_sql: no metric named '" ~ name ~ "' (models/marts/*/_*__metrics.yml)") -}}
    {%- endif -%}
    {%- set metric = found[0] -%}
    {%- set params = metric.type_params -%}
    {%- if metric.type == 'simple' -%}
        {{- return(shoplogs.measure(params.measure.name)) -}}
    {%- elif metric.type == 'ratio' and over_columns -%}
        {{- return('1.0 * ' ~ params.numerator.name
            ~ ' / nullif(' ~ params.denominator.name ~ ', 0)') -}}
    {%- elif metric.type == 'ratio' -%}
        {{- return('1.0 * ' ~ shoplogs.metric_sql(params.numerator.name)
            ~ ' / nullif(' ~ shoplogs.metric_sql(params.denominator.name) ~ ', 0)') -}}
    {%- elif metric.type == 'derived' -%}
        {{- return('(' ~ params.expr ~ ')') -}}
    {%- endif -%}
    {{- exceptions.raise_compiler_error(
        "shoplogs.metric_sql: metric '" ~ name ~ "' is of type '" ~ metric.type
        ~ "', which has no SQL here") -}}
{%- endmacro %}
