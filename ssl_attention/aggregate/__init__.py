"""Dataset-level summaries of the per-map metrics, and the CSV / JSON writers.

The unit of data is :class:`MetricRow`: one value per image x model x method x layer x head x metric
(plus box index and label for per-box metrics). Baselines are rows with ``method`` in
:data:`BASELINES`, ``layer = None`` and ``head = ""``. All statistics ignore NaN values; means over
images come with a percentile-bootstrap 95 % confidence interval (seeded, so deterministic).

Modules: ``rows`` (the row type and the index of whole-image rows), ``statistics`` (means with CIs,
best layers and heads, layer x head tables, rankings, per-label breakdowns), ``clustering`` (head
similarity, distances on statistics features, and the clustering), ``anatomy`` (per-head means of the head
statistics, high-norm tokens), ``export`` (the tidy CSV and the JSON summary). Everything public except
``anatomy`` is importable from here.
"""

from ssl_attention.aggregate.clustering import (
    Clustering,
    cluster_by_features,
    cluster_heads,
    feature_distances,
    head_similarity,
)
from ssl_attention.aggregate.export import (
    read_metrics_csv,
    summarise,
    summarise_index,
    write_metrics_csv,
    write_summary_json,
)
from ssl_attention.aggregate.rows import (
    BASELINES,
    CSV_COLUMNS,
    FUSED,
    Index,
    Key,
    MetricRow,
    index_rows,
    rows_from_scores,
)
from ssl_attention.aggregate.statistics import (
    CONFIDENCE,
    DEFAULT_BOX_METRIC,
    DEFAULT_PRIMARY,
    N_BOOT,
    SEED,
    Estimate,
    HeadRank,
    best_head,
    best_layer,
    bootstrap_ci,
    head_ranking,
    label_breakdown,
    layer_head_table,
)

__all__ = [
    "BASELINES", "CONFIDENCE", "CSV_COLUMNS", "DEFAULT_BOX_METRIC", "DEFAULT_PRIMARY", "FUSED", "N_BOOT", "SEED",
    "Clustering", "Estimate", "HeadRank", "Index", "Key", "MetricRow", "best_head", "best_layer", "bootstrap_ci",
    "cluster_by_features", "cluster_heads", "feature_distances", "head_ranking", "head_similarity", "index_rows",
    "label_breakdown", "layer_head_table", "read_metrics_csv", "rows_from_scores", "summarise", "summarise_index",
    "write_metrics_csv", "write_summary_json",
]
