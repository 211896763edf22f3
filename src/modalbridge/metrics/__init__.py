"""Metrics shared by every task: accuracy (top-k, mean-class, EPIC action), calibration, ranking.

All functions accept torch tensors (numpy arrays are converted), are vectorised over samples and
return Python floats, in percent unless the docstring says otherwise.
"""

from modalbridge.metrics.calibration import action_ece, expected_calibration_error, reliability_bins
from modalbridge.metrics.classification import (
    action_accuracy,
    binomial_stderr,
    epic_metrics,
    majority_baseline,
    mean_class_accuracy,
    per_class_accuracy,
    score_classification,
    topk_accuracy,
    topk_correct,
)
from modalbridge.metrics.ranking import (
    average_precision,
    charades_map,
    per_class_average_precision,
    recall_at_k,
)

__all__ = [
    "action_accuracy",
    "action_ece",
    "average_precision",
    "binomial_stderr",
    "charades_map",
    "epic_metrics",
    "expected_calibration_error",
    "majority_baseline",
    "mean_class_accuracy",
    "per_class_accuracy",
    "per_class_average_precision",
    "recall_at_k",
    "reliability_bins",
    "score_classification",
    "topk_accuracy",
    "topk_correct",
]
