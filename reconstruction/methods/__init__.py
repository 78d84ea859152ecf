"""Reconstruction methods. Every module in this package is imported, so each method
registers itself by being here."""

import importlib
import pkgutil

from reconstruction.methods.base import REGISTRY, Method, get_method, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["REGISTRY", "Method", "get_method", "register"]
