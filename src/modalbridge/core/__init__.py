"""Task-agnostic plumbing: registry, errors, paths, seeding, weights, runs and reports."""

from modalbridge.core.errors import DataError, WeightsNotFoundError
from modalbridge.core.registry import create_model, list_models, register_model

__all__ = ["DataError", "WeightsNotFoundError", "create_model", "list_models", "register_model"]
