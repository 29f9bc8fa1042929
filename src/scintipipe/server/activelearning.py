"""Active learning: which unlabelled image a reader should label next.

``random``
    Any image without a final label.
``least_confidence``
    The unlabelled image whose top class probability is lowest under a served bundle
    (param ``model``, default the first bundle). Confidences are cached per image and
    bundle; at most ``max_candidates`` (default 64) new images are classified per request.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from scintipipe.server.datastore import Datastore
from scintipipe.server.errors import BadRequest, UnknownStrategy
from scintipipe.server.models import ModelService

STRATEGIES = {
    "random": "A random image without a final label.",
    "least_confidence": "The unlabelled image the classifier is least sure about (lowest top probability).",
}
ALIASES = {"least-confidence": "least_confidence", "leastconfidence": "least_confidence", "first": "random"}
DEFAULT_MAX_CANDIDATES = 64


class ActiveLearning:
    """Pick the next image to label.

    Args:
        datastore: where the images are.
        models: the served bundles.
    """

    def __init__(self, datastore: Datastore, models: ModelService):
        self.datastore = datastore
        self.models = models
        self._confidence: dict[tuple[str, str, int, int], float] = {}
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """The ``strategies`` of ``/info/``."""
        return {name: {"description": text} for name, text in STRATEGIES.items()}

    def next_sample(self, strategy: str, params: dict[str, Any]) -> dict[str, Any]:
        """The next image for ``strategy``: ``{"id", "weight", "strategy", ...image info}``,
        or ``{}`` when every image is labelled.

        Raises:
            UnknownStrategy: no such strategy.
            BadRequest: bad params.
        """
        name = ALIASES.get(strategy.lower(), strategy.lower())
        if name not in STRATEGIES:
            raise UnknownStrategy(f"unknown strategy {strategy!r}; strategies: {', '.join(STRATEGIES)}")
        candidates = self.datastore.unlabelled_ids()
        if not candidates:
            return {}
        if name == "random":
            seed = params.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
                raise BadRequest("seed must be an integer or a string")
            rng = random.Random(seed)
            image_id, weight = rng.choice(candidates), 1.0
        else:
            image_id, weight = self._least_confident(candidates, params)
        return {**self.datastore.image_info(image_id), "id": image_id, "weight": weight, "strategy": name}

    def _least_confident(self, candidates: list[str], params: dict[str, Any]) -> tuple[str, float]:
        bundle_name = params.get("model") or next(iter(self.models.bundles))
        if not isinstance(bundle_name, str) or bundle_name not in self.models.bundles:
            raise BadRequest(f"least_confidence: unknown model {bundle_name!r}; bundles: {', '.join(self.models.bundles)}")
        try:
            budget = int(params.get("max_candidates", DEFAULT_MAX_CANDIDATES))
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadRequest("max_candidates must be an integer") from exc
        scores: dict[str, float] = {}
        for image_id in candidates:
            key = self._key(bundle_name, image_id)
            with self._lock:
                cached = self._confidence.get(key)
            if cached is None:
                if budget <= 0:
                    continue
                budget -= 1
                cached = self._confidence_of(bundle_name, image_id)
                with self._lock:
                    self._confidence[key] = cached
            scores[image_id] = cached
        if not scores:
            raise BadRequest("least_confidence: no unlabelled image could be classified")
        image_id = min(scores, key=lambda k: (scores[k], k))
        return image_id, round(1.0 - scores[image_id], 6)

    def _key(self, bundle_name: str, image_id: str) -> tuple[str, str, int, int]:
        bundle = self.models.bundles[bundle_name]
        info = self.datastore.image_info(image_id)
        return (image_id, str(bundle.root), id(bundle), int(info.get("ts", 0)))

    def _confidence_of(self, bundle_name: str, image_id: str) -> float:
        """Top probability of the image's first view; 2.0 (never chosen) when unreadable."""
        try:
            scans = self.models.load(self.datastore.image_path(image_id))
            case = self.models.classify_scans(bundle_name, scans[:1])[0]
            return float(case["prediction"]["confidence"])
        except Exception:  # noqa: BLE001  (an unreadable image is simply not suggested)
            return 2.0
