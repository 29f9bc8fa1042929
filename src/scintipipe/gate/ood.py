"""The ``ood`` gate layer: learned out-of-distribution scores on a network's penultimate features.

A bundle ships a fitted scorer (``models/ood.pt``) and its threshold (``configs/gate.json``);
``scintipipe gate fit`` makes both from the bundle's training data. Every score is *higher
for further out of distribution*; a view whose score is above the threshold is refused.

Methods (``configs/gate.json`` ``ood.method``):

``mahalanobis``
    Lee et al. 2018: class means of the penultimate features and one shared covariance
    (Ledoit-Wolf shrinkage); the score is the smallest squared Mahalanobis distance to a
    class mean.
``mahalanobis_layers``
    The same at every block of the network (channel means of its output) and at the
    penultimate layer, each distance divided by its mean over the training views, then
    averaged (Lee et al. 2018 score intermediate layers too; their layer weights are
    fitted on out-of-distribution data, which is not done here).
``mahalanobis_blocks``
    One class-conditional Gaussian (shared Ledoit-Wolf covariance) over the channel means
    of every block side by side; the smallest squared distance to a class mean.
``energy``
    Liu et al. 2020: ``-T * logsumexp(logits / T)``, from the logits alone.
``msp``
    Hendrycks & Gimpel 2017 baseline: ``-max softmax(logits)``.
``knn``
    Sun et al. 2022: distance of the L2-normalised feature to its k-th nearest neighbour
    among (a sample of) the normalised training features.

Which one a bundle ships, and why, is measured by ``benchmarks/gate_ood.py``.

Example:
    >>> import torch
    >>> from scintipipe.networks import ScintiNet
    >>> net = ScintiNet(num_classes=4).eval()
    >>> features, logits = penultimate_features(net, torch.rand(2, 1, 32, 32))
    >>> tuple(features.shape), tuple(logits.shape)
    ((2, 192), (2, 4))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from scintipipe.errors import BundleError

#: version of the ``ood.pt`` layout
FORMAT = 1


def last_linear(network: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` (in registration order): its input is the penultimate feature.

    Raises:
        ValueError: the network has no linear layer.
    """
    linears = [module for module in network.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(network).__name__} has no nn.Linear layer, so it has no penultimate features for the OOD score")
    return linears[-1]


def block_layers(network: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the network's blocks whose outputs are feature maps, in call order.

    A block is a module with children whose output is a 4-D tensor. A container whose
    output is its last child's (an ``nn.Sequential`` stage) is listed once, as the child;
    a block with an output of its own replaces the blocks inside it (a residual block,
    not its downsampling branch).
    ScintiNet: ``features.0`` ... ``features.6``; MONAI's ResNet: ``layer1.0`` ... ``layer4.0``.

    Args:
        network: the classifier, in eval mode.
        example: a batch of network inputs (one forward pass is run).
    """
    seen: dict[int, tuple[str, torch.Tensor]] = {}  # the tensors are kept so that ids are not reused
    order: list[str] = []
    handles = []
    for name, module in network.named_modules():
        if not name or not any(True for _ in module.children()):
            continue

        def hook(module: nn.Module, args: Any, output: Any, name: str = name) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                key = id(output)
                if key in seen:  # a container returning its last child's tensor: keep the child
                    return
                seen[key] = (name, output)
                # hooks run children first: a block with an output of its own replaces its sub-blocks
                order[:] = [kept for kept in order if not kept.startswith(name + ".")]
                order.append(name)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            network(example)
    finally:
        for handle in handles:
            handle.remove()
    return order


def network_features(network: nn.Module, inputs: torch.Tensor, layers: Sequence[str] = (), batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """One forward pass: penultimate features, logits and the channel means of ``layers``.

    Args:
        network: the classifier, in eval mode, on the device of ``inputs``.
        inputs: ``(N, C, H, W)`` network inputs.
        layers: dotted module names whose outputs' spatial means are wanted too.
        batch_size: split ``inputs`` into chunks of this size (``None``: one pass).

    Returns:
        ``{"features": (N, D), "logits": (N, K), "layer:<name>": (N, C_name)...}``, float32
        tensors on the CPU.
    """
    linear = last_linear(network)
    modules = dict(network.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"{type(network).__name__} has no layers {missing}")
    captured: dict[str, torch.Tensor] = {}
    handles = [linear.register_forward_hook(lambda module, args, output: captured.__setitem__("features", args[0].detach().flatten(1)))]
    for name in layers:
        handles.append(
            modules[name].register_forward_hook(
                lambda module, args, output, key=f"layer:{name}": captured.__setitem__(key, output.detach().float().mean((2, 3)))
            )
        )
    parts: dict[str, list[torch.Tensor]] = {}
    try:
        with torch.inference_mode():
            for chunk in [inputs] if batch_size is None else torch.split(inputs, batch_size):
                captured.clear()
                captured["logits"] = network(chunk)
                if "features" not in captured:
                    raise ValueError(f"the last linear layer of {type(network).__name__} was not called in its forward pass")
                for key, value in captured.items():
                    parts.setdefault(key, []).append(value.float().cpu())
    finally:
        for handle in handles:
            handle.remove()
    return {key: torch.cat(values) for key, values in parts.items()}


def penultimate_features(network: nn.Module, inputs: torch.Tensor, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: the input of the last linear layer and the logits.

    Args:
        network: the classifier, in eval mode, on the device of ``inputs``.
        inputs: ``(N, C, H, W)`` network inputs.
        batch_size: split ``inputs`` into chunks of this size (``None``: one pass).

    Returns:
        ``(features (N, D), logits (N, K))`` as float32 tensors on the CPU.
    """
    out = network_features(network, inputs, batch_size=batch_size)
    return out["features"], out["logits"]


class OODScorer:
    """A fitted out-of-distribution score; higher is further out.

    Scores are computed from :func:`network_features` (``"features"``, ``"logits"`` and the
    channel means of :attr:`layers`). Subclasses set :attr:`method` and implement
    :meth:`fit_features`, :meth:`score`, :meth:`state` and :meth:`from_state`.
    """

    method: ClassVar[str] = ""
    #: the network blocks whose channel means the score needs (besides the penultimate features)
    layers: tuple[str, ...] = ()

    def fit_features(self, feats: dict[str, torch.Tensor], targets: torch.Tensor) -> OODScorer:
        """Fit on in-distribution training outputs of :func:`network_features`; returns ``self``."""
        return self

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        """Scores ``(N,)`` from outputs of :func:`network_features`."""
        raise NotImplementedError

    def fit(self, features: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> OODScorer:
        """Fit on penultimate ``features`` ``(N, D)``, ``logits`` ``(N, K)`` and integer ``targets``."""
        return self.fit_features({"features": features, "logits": logits}, targets)

    def score_features(self, features: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
        """Scores ``(N,)`` from penultimate features and logits (scorers that need no other layers)."""
        return self.score({"features": features, "logits": logits})

    def score_batch(self, network: nn.Module, inputs: torch.Tensor) -> np.ndarray:
        """Scores ``(N,)`` for a batch of network inputs (one forward pass)."""
        return self.score(network_features(network, inputs, self.layers))

    def state(self) -> dict[str, Any]:
        """Plain tensors, numbers, strings and lists that :meth:`from_state` turns back into the scorer."""
        return {}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OODScorer:
        """The scorer :meth:`state` describes."""
        return cls()

    def save(self, path: str | Path) -> Path:
        """Write the statistics with ``torch.save`` (loadable with ``weights_only=True``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"method": self.method, "format": FORMAT, **self.state()}, path)
        return path


def _class_gaussian(x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Class means ``(K, D)``, the shared Ledoit-Wolf precision ``(D, D)`` and its shrinkage."""
    from sklearn.covariance import LedoitWolf

    features = x.double().numpy()
    y = np.asarray(targets, dtype=np.int64)
    classes = np.unique(y)
    if classes.size == 0 or classes.min() < 0 or classes.size != int(y.max()) + 1:
        missing = sorted(set(range(int(y.max()) + 1)) - set(classes.tolist())) if classes.size else []
        raise ValueError(f"every class needs labelled training features (missing class indices {missing})")
    means = np.stack([features[y == c].mean(0) for c in classes])
    estimator = LedoitWolf(assume_centered=True).fit(features - means[y])
    return torch.from_numpy(means), torch.from_numpy(estimator.precision_), float(estimator.shrinkage_)


def _min_distance(x: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Smallest squared Mahalanobis distance of each row of ``x`` to a class mean."""
    diff = x.double()[:, None, :] - means[None, :, :]  # (N, K, D)
    return torch.einsum("nkd,de,nke->nk", diff, precision, diff).min(dim=1).values


class MahalanobisScorer(OODScorer):
    """Smallest squared Mahalanobis distance to a class mean, shared Ledoit-Wolf covariance.

    Args:
        means: ``(K, D)`` class means (set by :meth:`fit`).
        precision: ``(D, D)`` inverse of the shared covariance.
    """

    method = "mahalanobis"

    def __init__(self, means: torch.Tensor | None = None, precision: torch.Tensor | None = None, shrinkage: float = float("nan")):
        self.means = means
        self.precision = precision
        self.shrinkage = shrinkage

    def fit_features(self, feats: dict[str, torch.Tensor], targets: torch.Tensor) -> MahalanobisScorer:
        self.means, self.precision, self.shrinkage = _class_gaussian(feats["features"], targets)
        return self

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        if self.means is None or self.precision is None:
            raise RuntimeError("MahalanobisScorer is not fitted")
        return _min_distance(feats["features"], self.means, self.precision).numpy()

    def state(self) -> dict[str, Any]:
        if self.means is None or self.precision is None:
            raise RuntimeError("MahalanobisScorer is not fitted")
        return {"means": self.means.double(), "precision": self.precision.double(), "shrinkage": float(self.shrinkage)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MahalanobisScorer:
        return cls(state["means"].double(), state["precision"].double(), float(state.get("shrinkage", float("nan"))))


class LayerMahalanobisScorer(OODScorer):
    """Mahalanobis distances at every block and the penultimate layer, each relative to its training mean, averaged.

    Lee et al. 2018 also score intermediate layers: early blocks see texture, noise and
    contrast, which tell floods, noise, text and photographs from scintigrams even where
    the penultimate features (made to separate the classes) do not. Each block's feature
    is the channel mean of its output; per block, the smallest class-conditional squared
    distance (shared Ledoit-Wolf covariance) is divided by its mean over the training
    views, and the score is the mean of these ratios over the blocks and the penultimate
    layer (about 1 in distribution). No out-of-distribution data sets any weight.

    Args:
        layers: block names (:func:`block_layers`; set by :meth:`fit_features` from the
            ``layer:`` keys it is given).
    """

    method = "mahalanobis_layers"

    def __init__(self, layers: Sequence[str] = ()):
        self.layers = tuple(layers)
        self.means: list[torch.Tensor] = []
        self.precisions: list[torch.Tensor] = []
        self.scales: list[float] = []

    def _keys(self) -> list[str]:
        return [f"layer:{name}" for name in self.layers] + ["features"]

    def fit_features(self, feats: dict[str, torch.Tensor], targets: torch.Tensor) -> LayerMahalanobisScorer:
        if not self.layers:
            self.layers = tuple(key.split(":", 1)[1] for key in feats if key.startswith("layer:"))
        if not self.layers:
            raise ValueError("mahalanobis_layers needs the channel means of the network's blocks (network_features(..., layers=block_layers(...)))")
        self.means, self.precisions, self.scales = [], [], []
        for key in self._keys():
            means, precision, _ = _class_gaussian(feats[key], targets)
            self.means.append(means)
            self.precisions.append(precision)
            self.scales.append(float(_min_distance(feats[key], means, precision).mean()))
        return self

    def per_layer(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        """``(N, L + 1)`` relative distances per block and for the penultimate layer."""
        if not self.means:
            raise RuntimeError("LayerMahalanobisScorer is not fitted")
        return torch.stack(
            [_min_distance(feats[key], m, p) / s for key, m, p, s in zip(self._keys(), self.means, self.precisions, self.scales, strict=True)], 1
        ).numpy()

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        return self.per_layer(feats).mean(axis=1)

    def state(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "means": [m.double() for m in self.means],
            "precisions": [p.double() for p in self.precisions],
            "scales": list(self.scales),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LayerMahalanobisScorer:
        scorer = cls([str(name) for name in state["layers"]])
        scorer.means = [m.double() for m in state["means"]]
        scorer.precisions = [p.double() for p in state["precisions"]]
        scorer.scales = [float(s) for s in state["scales"]]
        if not len(scorer.means) == len(scorer.precisions) == len(scorer.scales) == len(scorer.layers) + 1:
            raise ValueError("layers, means, precisions and scales do not match")
        return scorer


class BlockMahalanobisScorer(OODScorer):
    """Smallest class-conditional squared Mahalanobis distance of the concatenated channel means of every block.

    One Gaussian per class (shared Ledoit-Wolf covariance) over the channel means of all
    of the network's blocks side by side (:func:`block_layers`; 336 values for ScintiNet),
    so that a view is out of distribution when its texture, contrast and shape statistics
    *together* are unlike the training scans', even where each block alone looks typical.

    Args:
        layers: block names (set by :meth:`fit_features` from the ``layer:`` keys it is given).
    """

    method = "mahalanobis_blocks"

    def __init__(self, layers: Sequence[str] = ()):
        self.layers = tuple(layers)
        self.means: torch.Tensor | None = None
        self.precision: torch.Tensor | None = None
        self.shrinkage = float("nan")

    def _stack(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([feats[f"layer:{name}"] for name in self.layers], 1)

    def fit_features(self, feats: dict[str, torch.Tensor], targets: torch.Tensor) -> BlockMahalanobisScorer:
        if not self.layers:
            self.layers = tuple(key.split(":", 1)[1] for key in feats if key.startswith("layer:"))
        if not self.layers:
            raise ValueError("mahalanobis_blocks needs the channel means of the network's blocks (network_features(..., layers=block_layers(...)))")
        self.means, self.precision, self.shrinkage = _class_gaussian(self._stack(feats), targets)
        return self

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        if self.means is None or self.precision is None:
            raise RuntimeError("BlockMahalanobisScorer is not fitted")
        return _min_distance(self._stack(feats), self.means, self.precision).numpy()

    def state(self) -> dict[str, Any]:
        if self.means is None or self.precision is None:
            raise RuntimeError("BlockMahalanobisScorer is not fitted")
        return {"layers": list(self.layers), "means": self.means.double(), "precision": self.precision.double(), "shrinkage": float(self.shrinkage)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BlockMahalanobisScorer:
        scorer = cls([str(name) for name in state["layers"]])
        scorer.means, scorer.precision = state["means"].double(), state["precision"].double()
        scorer.shrinkage = float(state.get("shrinkage", float("nan")))
        return scorer


class EnergyScorer(OODScorer):
    """Free energy ``-T * logsumexp(logits / T)``: low for confident in-distribution views.

    Args:
        temperature: the energy's temperature (1.0 as in Liu et al. 2020).
    """

    method = "energy"

    def __init__(self, temperature: float = 1.0):
        self.temperature = float(temperature)

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        t = self.temperature
        return (-t * torch.logsumexp(feats["logits"].double() / t, dim=1)).numpy()

    def state(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EnergyScorer:
        return cls(float(state.get("temperature", 1.0)))


class MaxSoftmaxScorer(OODScorer):
    """Baseline: minus the largest softmax probability."""

    method = "msp"

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        return (-feats["logits"].double().softmax(dim=1).max(dim=1).values).numpy()


class KNNScorer(OODScorer):
    """Distance of the normalised feature to its k-th nearest normalised training feature.

    Args:
        k: which neighbour.
        bank_size: training features kept (a seeded random sample when there are more).
        bank: ``(M, D)`` normalised training features (set by :meth:`fit`).
    """

    method = "knn"

    def __init__(self, k: int = 10, bank_size: int = 4096, bank: torch.Tensor | None = None):
        self.k = int(k)
        self.bank_size = int(bank_size)
        self.bank = bank

    def fit_features(self, feats: dict[str, torch.Tensor], targets: torch.Tensor) -> KNNScorer:
        bank = nn.functional.normalize(feats["features"].float(), dim=1)
        if len(bank) > self.bank_size:
            keep = torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[: self.bank_size]
            bank = bank[keep.sort().values]
        self.bank = bank.contiguous()
        return self

    def score(self, feats: dict[str, torch.Tensor]) -> np.ndarray:
        if self.bank is None:
            raise RuntimeError("KNNScorer is not fitted")
        x = nn.functional.normalize(feats["features"].float(), dim=1)
        distances = torch.cdist(x, self.bank)
        k = min(self.k, self.bank.shape[0])
        return distances.topk(k, dim=1, largest=False).values[:, -1].double().numpy()

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "bank_size": self.bank_size, "bank": self.bank}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KNNScorer:
        return cls(int(state["k"]), int(state.get("bank_size", len(state["bank"]))), state["bank"].float())


#: every scorer by its ``method`` name
METHODS: dict[str, type[OODScorer]] = {
    cls.method: cls for cls in (MahalanobisScorer, LayerMahalanobisScorer, BlockMahalanobisScorer, EnergyScorer, MaxSoftmaxScorer, KNNScorer)
}


def make_scorer(method: str, **options: Any) -> OODScorer:
    """A new, unfitted scorer.

    Raises:
        ValueError: an unknown method (the known ones are listed).
    """
    if method not in METHODS:
        raise ValueError(f"unknown OOD method {method!r}; known: {', '.join(METHODS)}")
    return METHODS[method](**options)


def load_scorer(path: str | Path, method: str) -> OODScorer:
    """Read statistics written by :meth:`OODScorer.save` (``torch.load(weights_only=True)``).

    Args:
        path: the ``ood.pt`` file.
        method: the method ``configs/gate.json`` names; it must match the file's.

    Raises:
        FileNotFoundError: no file at ``path``.
        BundleError: the file cannot be read, or holds another method or layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BundleError(f"cannot read OOD statistics {path}: {exc}") from exc
    if not isinstance(state, dict) or "method" not in state:
        raise BundleError(f"{path} is not an OOD statistics file written by scintipipe gate fit")
    if state["method"] != method:
        raise BundleError(f"{path} holds {state['method']!r} statistics but configs/gate.json names the method {method!r}")
    if int(state.get("format", 0)) != FORMAT:
        raise BundleError(
            f"{path} has OOD statistics format {state.get('format')}; this scintipipe reads format {FORMAT}: refit with scintipipe gate fit"
        )
    if method not in METHODS:
        raise BundleError(f"{path}: unknown OOD method {method!r}; known: {', '.join(METHODS)}")
    try:
        return METHODS[method].from_state(state)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"{path}: malformed {method} statistics ({exc})") from exc


# ---- one forward pass for the gate and the classifier ---------------------------------


def remember_logits(bundle: Any, inputs: torch.Tensor, logits: torch.Tensor) -> None:
    """Keep the logits the gate's forward pass computed for ``inputs``, for :func:`recall_logits`.

    The built-in ``gate_batch`` and ``classify_batch`` see the same batch tensor one after
    the other; sharing the pass halves the network's time in a gated run. Only the last
    batch is kept, and only the very same tensor object finds it.
    """
    bundle.__dict__["_gate_forward"] = (inputs, logits)


def recall_logits(bundle: Any, inputs: torch.Tensor) -> torch.Tensor | None:
    """The logits :func:`remember_logits` kept for this very ``inputs`` tensor, else ``None``."""
    entry = bundle.__dict__.pop("_gate_forward", None)
    return entry[1] if entry is not None and entry[0] is inputs else None
