"""The method interface and registry.

A method is a class with a ``name``, a ``Config`` dataclass whose defaults work on the demo
capture on a laptop CPU (each field documented by the docstring under it), and the hooks
below. Adding a method is adding one module to ``reconstruction/methods/`` that defines a
subclass decorated with :func:`register`; the package imports every module in it.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from reconstruction.data.scene import Cameras, Normalization, Scene

REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    import reconstruction.methods  # noqa: F401  (imports every method module)

    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def config_from_dict(config_cls: type, values: dict[str, Any] | None) -> Any:
    """Build a config dataclass from plain values, ignoring unknown keys is an error."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown setting(s) for {config_cls.__name__}: {', '.join(sorted(unknown))}")
    return config_cls(**values)


def config_docs(config_cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it (for settings panels and --help)."""
    import ast
    import inspect
    import textwrap

    try:
        src = textwrap.dedent(inspect.getsource(config_cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(src).body[0].body
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:] + [None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


class Method(ABC):
    """One reconstruction method, trained one step at a time by the engine."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    outputs: ClassVar[tuple[str, ...]] = ()  # files export() writes, e.g. ("mesh.ply",)
    snapshot_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()
        self.step_count = 0
        self.progress = 0.0  # fraction of the training budget used, set by the engine
        self.device = torch.device("cpu")
        self.normalization: Normalization | None = None
        self.image_size: tuple[int, int] = (0, 0)  # (width, height) of the capture as trained
        self.background = np.ones(3, np.float32)

    @abstractmethod
    def setup(self, scene: Scene | None, device: torch.device) -> None:
        """Build the model for ``scene`` (None when restoring for rendering only)."""

    @abstractmethod
    def step(self) -> dict[str, float]:
        """One optimisation step; returns scalar metrics (loss, psnr, ...)."""

    @abstractmethod
    def snapshot(self, kind: str, quality: str = "low") -> dict[str, np.ndarray] | None:
        """Numpy payload of the current state for the viewport (mesh, points, image, ...)."""

    @abstractmethod
    def render(self, cameras: Cameras) -> np.ndarray:
        """[N, H, W, 3] float32 images in [0, 1] seen by ``cameras`` (world coordinates)."""

    @abstractmethod
    def export(self, out_dir: Path) -> dict[str, str]:
        """Write the method's outputs into ``out_dir``; returns {kind: path}."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume or render: tensors and plain Python values only."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def reduce_gradients(self) -> None:
        """Average the gradients over the data-parallel processes; call it between
        ``backward()`` and the optimizer steps. A no-op unless training runs distributed
        (``recon fit --nproc N``, torchrun): see :mod:`reconstruction.distributed`."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            from reconstruction.distributed import reduce_gradients

            reduce_gradients(self)


class RayFieldMethod(Method):
    """Shared machinery of the methods that volume-render a field along camera rays.

    Holds the training views on the training device (poses in the unit cube, intrinsics,
    colours, the alpha when the images were composited from it), draws random training
    rays, renders whole images through the subclass's :meth:`render_rays` and scores the
    test views. Subclasses build their model in ``setup`` and call :meth:`_setup_views`.
    """

    eval_chunk: int = 8192  # rays per chunk when rendering whole images

    def _setup_views(self, scene: Scene) -> np.ndarray:
        """Keep the training views of ``scene``; returns the train indices."""
        dev = self.device
        self.scene = scene
        self.normalization = scene.normalization
        self.image_size = (scene.width, scene.height)
        self.background = np.asarray(scene.background, np.float32)
        train = scene.split.get("train")
        if train is None or len(train) == 0:
            train = np.arange(len(scene))
        cams = scene.cameras.subset(train)
        c2w = scene.normalization.c2w_to_unit(cams.c2w)
        self.train_c2w = torch.tensor(c2w, dtype=torch.float32, device=dev)  # [N, 4, 4]
        self.train_k = torch.tensor(np.stack([cams.fx, cams.fy, cams.cx, cams.cy], 1),
                                    dtype=torch.float32, device=dev)  # [N, 4]
        self.train_rgb = torch.from_numpy(scene.images[train]).to(dev).float().div_(255.0)
        self.train_mask = None  # [N, H, W] in [0, 1] when the capture has masks
        self.train_alpha = None  # the same, when the images were alpha-composited from it
        if scene.masks is not None:
            self.train_mask = torch.from_numpy(scene.masks[train]).to(dev).float().div_(255.0)
            if scene.alpha_composited:
                self.train_alpha = self.train_mask
        self.bg = torch.tensor(self.background, device=dev)
        test = scene.split.get("test")
        if test is None or len(test) == 0:
            test = scene.split.get("val", np.zeros(0, np.int64))
        self.test_idx = np.asarray(test, np.int64)
        return np.asarray(train, np.int64)

    def sample_rays(self, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` random training rays (jittered inside their pixels): origins [n, 3] and
        dirs [n, 3] in the unit cube, rgb [n, 3], and mask [n] where the capture has masks."""
        from reconstruction.rendering.rays import pixel_rays

        n_img, h, w, _ = self.train_rgb.shape
        dev = self.device
        img = torch.randint(n_img, (n,), generator=gen).to(dev)
        py = torch.randint(h, (n,), generator=gen).to(dev)
        px = torch.randint(w, (n,), generator=gen).to(dev)
        u = px.float() + torch.rand(n, generator=gen).to(dev)
        v = py.float() + torch.rand(n, generator=gen).to(dev)
        k = self.train_k[img]
        origins, dirs = pixel_rays(self.train_c2w[img], k[:, 0], k[:, 1], k[:, 2], k[:, 3], u, v)
        out = {"origins": origins, "dirs": dirs, "rgb": self.train_rgb[img, py, px]}
        if self.train_mask is not None:
            out["mask"] = self.train_mask[img, py, px]
        return out

    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor) -> dict[str, torch.Tensor]:
        """origins, dirs: [R, 3] in the unit cube -> at least rgb [R, 3], opacity [R] and
        median_depth [R] (distance where the opacity reaches 1/2, inf where it never does)."""
        raise NotImplementedError

    def bg_tensor(self) -> torch.Tensor:
        return torch.tensor(np.asarray(self.background, np.float32), device=self.device)

    @torch.no_grad()
    def render_views(self, c2w: np.ndarray, k: np.ndarray, width: int, height: int,
                     keys: tuple[str, ...] = ("rgb",)) -> dict[str, np.ndarray]:
        """c2w [V, 4, 4] unit-cube poses, k [V, 4] intrinsics -> {key: [V, H, W, ...]}."""
        from reconstruction.rendering.rays import image_rays

        outs: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        for i in range(len(c2w)):
            o, d = image_rays(torch.as_tensor(c2w[i], dtype=torch.float32), *map(float, k[i]),
                              width, height)
            o, d = o.to(self.device), d.to(self.device)
            parts: dict[str, list[torch.Tensor]] = {key: [] for key in keys}
            for oc, dc in zip(o.split(self.eval_chunk), d.split(self.eval_chunk), strict=True):
                r = self.render_rays(oc, dc)
                for key in keys:
                    parts[key].append(r[key])
            for key in keys:
                t = torch.cat(parts[key])
                outs[key].append(t.view(height, width, *t.shape[1:]).cpu().numpy())
        return {key: np.stack(v) if v else np.zeros((0, height, width)) for key, v in outs.items()}

    @torch.no_grad()
    def render(self, cameras: Cameras) -> np.ndarray:
        assert self.normalization is not None
        c2w = self.normalization.c2w_to_unit(cameras.c2w)
        k = np.stack([cameras.fx, cameras.fy, cameras.cx, cameras.cy], 1)
        if len(cameras) == 0:
            return np.zeros((0, cameras.height, cameras.width, 3), np.float32)
        rgb = self.render_views(c2w, k, cameras.width, cameras.height)["rgb"]
        return np.clip(rgb, 0, 1).astype(np.float32)

    def evaluate(self, max_views: int | None = None) -> dict[str, float]:
        """PSNR on the capture's test (or val) views: over whole images, or inside the masks
        when the capture has masks but real backgrounds (DTU), which the methods do not model."""
        if getattr(self, "scene", None) is None or len(self.test_idx) == 0:
            return {}
        idx = self.test_idx if max_views is None else self.test_idx[:max_views]
        pred = self.render(self.scene.cameras.subset(idx))
        gt = self.scene.images[idx].astype(np.float32) / 255.0
        err = ((pred - gt) ** 2).mean(-1).reshape(len(idx), -1)  # [V, H * W]
        region = "image"
        if self.scene.masks is not None and not self.scene.alpha_composited:
            m = (self.scene.masks[idx] > 127).reshape(len(idx), -1)
            mse = (err * m).sum(1) / np.maximum(m.sum(1), 1)
            region = "mask"
        else:
            mse = err.mean(1)
        psnr = -10 * np.log10(np.maximum(mse, 1e-10))
        return {"test_psnr": float(psnr.mean()), "test_views": int(len(idx)),
                "test_psnr_region": region}

    @torch.no_grad()
    def depth_maps(self, max_views: int = 24, max_size: int = 128):
        """Rendered (median) distance and opacity of up to ``max_views`` training views.

        Returns (c2w [V, 4, 4], intrinsics [V, 4], depth [V, h, w], opacity [V, h, w]).
        """
        n = self.train_c2w.shape[0]
        idx = np.unique(np.linspace(0, n - 1, min(max_views, n)).round().astype(np.int64))
        _, h0, w0, _ = self.train_rgb.shape
        f = min(1.0, max_size / max(h0, w0))
        w, h = max(1, round(w0 * f)), max(1, round(h0 * f))
        k = self.train_k[idx].cpu().double().numpy() * np.array([w / w0, h / h0, w / w0, h / h0])
        c2w = self.train_c2w[idx].cpu().double().numpy()
        r = self.render_views(c2w, k, w, h, keys=("median_depth", "opacity"))
        return c2w, k, r["median_depth"], r["opacity"]

    def test_image_snapshot(self, quality: str) -> dict[str, np.ndarray] | None:
        """The first test view rendered (small while training) for the viewport."""
        if getattr(self, "scene", None) is None or not len(self.scene):
            return None
        idx = self.test_idx[:1] if len(self.test_idx) else np.array([0])
        cams = self.scene.cameras.subset(idx)
        if quality == "low":
            cams = cams.scaled(min(1.0, 96 / max(cams.width, cams.height)))
        return {"image": self.render(cams)[0]}

    # -- state ----------------------------------------------------------------------------
    # Subclasses keep their model in ``field``, the table and MLP optimizers in
    # ``grid_optimizer`` / ``mlp_optimizer``, the occupancy grid in ``grid``, the ray batch
    # size in ``n_rays`` and their random generator in ``gen``.
    def state_dict(self) -> dict[str, Any]:
        assert self.normalization is not None
        return {
            "field": {k: v.detach().cpu() for k, v in self.field.state_dict().items()},
            "grid_optimizer": self.grid_optimizer.state_dict(),
            "mlp_optimizer": self.mlp_optimizer.state_dict(),
            "occupancy": self.grid.state_dict(),
            "step": self.step_count,
            "n_rays": self.n_rays,
            "rng": self.gen.get_state(),
            "config": dataclasses.asdict(self.config),
            "normalization": {"center": list(self.normalization.center),
                              "scale": self.normalization.scale},
            "image_size": list(self.image_size),
            "background": [float(x) for x in self.background],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.field.load_state_dict(state["field"])
        if "grid_optimizer" in state:
            self.grid_optimizer.load_state_dict(state["grid_optimizer"])
            self.mlp_optimizer.load_state_dict(state["mlp_optimizer"])
        self.grid.load_state_dict(state["occupancy"])
        self.step_count = int(state["step"])
        self.n_rays = int(state.get("n_rays", self.n_rays))
        if "rng" in state:
            self.gen.set_state(state["rng"])
        nz = state["normalization"]
        self.normalization = Normalization(tuple(nz["center"]), float(nz["scale"]))
        self.image_size = tuple(state["image_size"])
        self.background = np.asarray(state["background"], np.float32)
