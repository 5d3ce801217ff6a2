"""Training: recipes, the engine (stages, DDP, AMP, exact resume), evaluation, checkpoints, plots.

>>> from zoo.train import load_recipe, train
>>> result = train(load_recipe('recipes/quickstart.yaml', ['max_epochs=1']))
>>> result.metrics['top1'], result.checkpoint
"""
from .checkpoint import get_rng_state, init_weights_from, load_training_checkpoint, save_checkpoint, set_rng_state
from .distributed import gather_with_grad, get_rank, get_world_size, is_distributed
from .engine import (
    MetricsLogger,
    ResumableSampler,
    RunResult,
    Trainer,
    TrainingInterrupted,
    WarmupCosine,
    build_model_from_checkpoint,
    evaluate_checkpoint,
    train,
)
from .evaluate import (
    confusion_matrix,
    efficacy_score,
    knn_accuracy,
    knn_recall,
    linear_probe_accuracy,
    predict,
    topk_accuracy,
)
from .recipe import Recipe, RecipeError, apply_overrides, load_recipe, recipe_from_dict, recipe_to_yaml

__all__ = [
    "Recipe",
    "RecipeError",
    "load_recipe",
    "recipe_from_dict",
    "recipe_to_yaml",
    "apply_overrides",
    "Trainer",
    "RunResult",
    "TrainingInterrupted",
    "MetricsLogger",
    "ResumableSampler",
    "WarmupCosine",
    "train",
    "evaluate_checkpoint",
    "build_model_from_checkpoint",
    "predict",
    "topk_accuracy",
    "confusion_matrix",
    "knn_recall",
    "knn_accuracy",
    "linear_probe_accuracy",
    "efficacy_score",
    "save_checkpoint",
    "load_training_checkpoint",
    "init_weights_from",
    "get_rng_state",
    "set_rng_state",
    "gather_with_grad",
    "get_rank",
    "get_world_size",
    "is_distributed",
]
