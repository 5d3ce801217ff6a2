"""Helpers every layer may use: model statistics (:mod:`zoo.utils.flops`) and distributed
training (:mod:`zoo.utils.distributed`: process groups, gathers with gradient, rank helpers)."""
from .flops import count_flops, count_params

__all__ = ["count_params", "count_flops"]
