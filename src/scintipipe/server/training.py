"""``/train/{model}``: retrain a served bundle on the datastore's labelled images.

A training job runs in a background thread, one at a time. It gathers every image whose
final label carries a class of the bundle (see
:func:`scintipipe.server.label_images.class_label_from`), writes a ``file,label`` CSV and
calls :func:`scintipipe.training.train.train_bundle` with the bundle's own recipe
(``configs/recipe.json``), else the shipped recipe of its task. The new bundle goes to
``DATASTORE/models/<bundle>-<job>/``; with ``"deploy": true`` the server serves it in
place of the old one once training succeeds.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from pathlib import Path
from typing import Any

from scintipipe.bundle import Bundle
from scintipipe.server.datastore import FINAL_TAG, Datastore
from scintipipe.server.errors import BadRequest, NotFound, TrainingBusy, hide_paths
from scintipipe.server.models import ModelService

MIN_LABELLED = 4
MAX_LOG_LINES = 200
LOG = logging.getLogger(__name__)


def load_bundle_recipe(bundle: Bundle, recipe_name: str | None = None) -> dict[str, Any]:
    """The recipe to retrain ``bundle`` with: ``recipe_name``, its own, or its task's.

    Raises:
        BadRequest: no recipe found, or its labels differ from the bundle's.
    """
    from scintipipe.training.recipe import RecipeError, load_recipe

    try:
        if recipe_name:
            recipe = load_recipe(recipe_name)
        elif (bundle.root / "configs/recipe.json").is_file():
            recipe = load_recipe(bundle.root / "configs/recipe.json")
        else:
            recipe = load_recipe(bundle.task)
    except RecipeError as exc:
        raise BadRequest(f"no training recipe for bundle {bundle.name!r}: {exc}") from exc
    if list(recipe["labels"]) != list(bundle.labels):
        raise BadRequest(f"recipe labels {recipe['labels']} differ from bundle {bundle.name!r}'s {bundle.labels}")
    return recipe


def validation_fraction(labels: list[str], wanted: float) -> float:
    """The recipe's validation fraction, raised so that a stratified split can hold one
    image of every class (few labelled images make the split stratified but tiny)."""
    counts = {label: labels.count(label) for label in set(labels)}
    if min(counts.values()) < 2:
        return wanted  # split_rows does not stratify then
    return max(wanted, len(counts) / len(labels))


class TrainingJobs:
    """Background training jobs and their status.

    Args:
        datastore: the labelled images.
        models: the served bundles (a deployed result replaces one).
    """

    def __init__(self, datastore: Datastore, models: ModelService):
        self.datastore = datastore
        self.models = models
        self.jobs: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def info(self) -> dict[str, Any]:
        """The ``trainers`` of ``/info/``."""
        return {
            name: {
                "description": f"Retrain {name} on the datastore's labelled images ({bundle.task} recipe)",
                "config": {"epochs": None, "seed": None, "recipe": None, "deploy": False},
            }
            for name, bundle in self.models.bundles.items()
        }

    def hide(self, text: str) -> str:
        """``text`` with the datastore folder written ``<datastore>``."""
        return hide_paths(text, {str(self.datastore.root): "<datastore>"})

    def running(self) -> bool:
        """Whether a job is running."""
        return self._thread is not None and self._thread.is_alive()

    def labelled_rows(self, bundle: Bundle) -> list[tuple[Path, str]]:
        """``(image file, class)`` for every labelled image whose class the bundle knows."""
        rows = []
        for image_id in self.datastore.labelled_ids(FINAL_TAG):
            label = self.datastore.label_info(image_id).get("class_label")
            if label in bundle.labels:
                rows.append((self.datastore.image_path(image_id), label))
        return rows

    def start(self, model_name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Start retraining bundle ``model_name``; returns the new job's status.

        Raises:
            NotFound: not a served bundle (segmentation models are not trainable).
            BadRequest: too few labelled images, no recipe, bad params.
            TrainingBusy: a job is already running.
        """
        if model_name not in self.models.bundles:
            raise NotFound(
                f"no trainable model {model_name!r}; trainable: {', '.join(self.models.bundles)} (the _roi and _gradcam models are not trained)"
            )
        bundle = self.models.bundles[model_name]
        wanted = params.get("recipe")
        if wanted is not None and (not isinstance(wanted, str) or not wanted.replace("_", "").replace("-", "").isalnum()):
            raise BadRequest("recipe must be the name of a registered recipe (letters, digits, '_' and '-'), not a file on the server")
        recipe = load_bundle_recipe(bundle, params.get("recipe"))
        for key in ("epochs", "seed"):
            if params.get(key) is not None:
                try:
                    recipe[key] = int(params[key])
                except (TypeError, ValueError, OverflowError) as exc:
                    raise BadRequest(f"{key} must be an integer") from exc
                if key == "epochs" and recipe[key] < 1:
                    raise BadRequest("epochs must be at least 1")
        rows = self.labelled_rows(bundle)
        if len(rows) < MIN_LABELLED:
            raise BadRequest(
                f"need at least {MIN_LABELLED} images with a class label of {bundle.name!r} ({', '.join(bundle.labels)}); the datastore has {len(rows)}"
            )
        recipe["val_fraction"] = validation_fraction([label for _, label in rows], float(recipe["val_fraction"]))
        with self._lock:
            if self.running():
                raise TrainingBusy("a training job is already running; see GET /train/")
            job_id = time.strftime("%Y%m%d-%H%M%S") + f"-{len(self.jobs) + 1}"
            job = {
                "id": job_id,
                "name": "train",
                "model": model_name,
                "status": "RUNNING",
                "start_ts": int(time.time()),
                "end_ts": None,
                "images": len(rows),
                "params": {k: v for k, v in params.items() if k != "client_id"},
                "details": [],
                "result": None,
            }
            self.jobs.append(job)
            self._thread = threading.Thread(
                target=self._run, args=(job, bundle, recipe, rows, bool(params.get("deploy"))), name=f"train-{job_id}", daemon=True
            )
            self._thread.start()
        return dict(job)

    def status(self, all_jobs: bool = False) -> Any:
        """The latest job (or every job), or ``None`` when none ran."""
        with self._lock:
            if not self.jobs:
                return None
            return [dict(job) for job in self.jobs] if all_jobs else dict(self.jobs[-1])

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running job ends (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: dict[str, Any], bundle: Bundle, recipe: dict[str, Any], rows: list[tuple[Path, str]], deploy: bool) -> None:
        from scintipipe.training.train import train_bundle

        def log(message: str) -> None:  # what clients see: datastore paths hidden
            with self._lock:
                job["details"] = (job["details"] + [self.hide(str(message))])[-MAX_LOG_LINES:]

        work = self.datastore.root / "training" / job["id"]
        out_dir = self.datastore.root / "models" / f"{bundle.name}-{job['id']}"
        try:
            work.mkdir(parents=True, exist_ok=True)
            labels_csv = work / "labels.csv"
            with labels_csv.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["file", "label"])
                writer.writerows([str(path), label] for path, label in rows)
            recipe["trained_on"] = f"{len(rows)} reader-labelled images from the scintipipe serve datastore"
            result = train_bundle(
                self.models.pm,
                recipe,
                None,
                labels_csv,
                out_dir,
                device=self.models.device,
                data_description=recipe["trained_on"],
                progress=False,
                log=log,
            )
            accuracy = result.validation.get("overall", {}).get("accuracy")
            summary = {
                "bundle_dir": self.datastore.relative(result.bundle_dir),
                "best_epoch": result.best_epoch + 1,
                "validation_accuracy": accuracy,
                "seconds": round(result.seconds, 1),
                "left_out": len(result.failures),
                "deployed": False,
            }
            if deploy:
                self.models.set_bundle(bundle.name, Bundle(result.bundle_dir, name=bundle.name))
                summary["deployed"] = True
                log(f"now serving {summary['bundle_dir']} as {bundle.name}")
            with self._lock:
                job.update(status="DONE", result=summary, end_ts=int(time.time()))
        except Exception as exc:  # the job reports it; the server stays up
            LOG.exception("training job %s failed", job["id"])  # the traceback goes to the server's log, not to clients
            error = self.hide(f"{type(exc).__name__}: {exc}")
            log(error)
            with self._lock:
                job.update(status="ERROR", result={"error": error}, end_ts=int(time.time()))
