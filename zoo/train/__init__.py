"""Training: recipes, the engine (stages, DDP, AMP, exact resume), evaluation, checkpoints, plots.

>>> from zoo.train import load_recipe, train
>>> result = train(load_recipe('recipes/quickstart.yaml', ['max_epochs=1']))
>>> result.metrics['top1'], result.checkpoint
"""
from .._checkpoint import build_model_from_checkpoint, load_training_checkpoint
from ..utils.distributed import gather_with_grad, get_rank, get_world_size, is_distributed
from .checkpoint import get_rng_state, init_weights_from, save_checkpoint, set_rng_state
from .evaluate import (
    confusion_matrix,
    efficacy_score,
    knn_accuracy,
    knn_recall,
    linear_probe_accuracy,
    predict,
    topk_accuracy,
)
from .evaluator import EvalLoaders, evaluate_checkpoint, evaluate_model
from .loaders import ResumableSampler, make_loader, recipe_dataset
from .logger import MetricsLogger
from .optim import WarmupCosine
from .recipe import Recipe, RecipeError, apply_overrides, load_recipe, recipe_from_dict, recipe_to_yaml
from .runtime import Runtime, setup_runtime
from .trainer import RunResult, Trainer, TrainingInterrupted, train

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
    "evaluate_model",
    "EvalLoaders",
    "Runtime",
    "setup_runtime",
    "make_loader",
    "recipe_dataset",
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
