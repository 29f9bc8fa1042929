"""The server's datastore: a folder of images and readers' labels with a JSON index.

Layout (the index mirrors MONAI Label's local datastore, so ``GET /datastore/?output=all``
looks the same to a client)::

    DATASTORE/
      datastore.json            # {"name", "description", "objects": {id: {"image": {...}, "labels": {tag: {...}}}}}
      images/<id><ext>          # the uploaded scan, as uploaded
      labels/<tag>/<id><ext>    # a reader's label image (tag "final" by default)

Every write goes to a temporary file in the same folder, is flushed to disk
(:func:`os.fsync`) and then renamed over its target (:func:`os.replace`, then the folder
is synced too), so a crash or a failed upload never leaves a half-written label or index
behind. A new file is written before the index names it, and a file is deleted only after
the index stops naming it, so at every moment the index names only whole files. A crash
(kill -9, power loss) between the two steps can leave a file that the index does not name;
opening the datastore moves such files to ``.recovered/<UTC time>/`` and deletes the temporary
files of writes cut short. The datastore survives restarts: everything it knows is on disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from scintipipe.server.errors import BadRequest, NotFound

INDEX_NAME = "datastore.json"
FINAL_TAG = "final"
RECOVERED = ".recovered"
TEMP_SUFFIX = ".tmp"
LOG = logging.getLogger(__name__)
ID_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._()+-]{0,126}[A-Za-z0-9._()+-])?$")  # Slicer names volumes "MR Head"
COMPOUND_SUFFIXES = (".nii.gz", ".tar.gz")


class DatastoreError(BadRequest):
    """A request the datastore refuses (an unsafe id), with the reason: 400."""


def file_suffix(filename: str) -> str:
    """The extension of an uploaded file name, ``.nii.gz`` kept whole; ``""`` when none."""
    name = Path(filename or "").name.lower()
    for compound in COMPOUND_SUFFIXES:
        if name.endswith(compound):
            return compound
    suffix = Path(name).suffix
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix or "") else ""


def stem_of(filename: str) -> str:
    """A file name without its extension (``scan.nii.gz`` gives ``scan``)."""
    name = Path(filename or "").name
    suffix = file_suffix(name)
    return name[: len(name) - len(suffix)] if suffix else name


def check_id(value: str, what: str = "image id") -> str:
    """Return ``value`` when it is a safe file name (letters, digits, space, ``._()+-``), else raise.

    Raises:
        DatastoreError: the id could escape the datastore folder or is empty.
    """
    if not value or not ID_PATTERN.match(value) or ".." in value:
        raise DatastoreError(
            f"{what} {value!r} is not allowed: use 1-128 letters, digits, spaces or '._()+-', starting with a letter or digit (no '/' or '..')"
        )
    return value


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary file in its folder and :func:`os.replace`.

    Args:
        path: the file to create or replace.
        write: writes the content to the open temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda stream: stream.write(data))


def atomic_copy(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` atomically."""

    def copy(stream: BinaryIO) -> None:
        with open(source, "rb") as original:
            shutil.copyfileobj(original, stream)

    atomic_write(path, copy)


class Datastore:
    """Images, labels and their index in one folder; safe to use from several threads.

    Args:
        root: the folder (created when missing).
        name: shown in the index.
    """

    def __init__(self, root: str | Path, name: str = "scintipipe"):
        self.root = Path(root).resolve()
        (self.root / "images").mkdir(parents=True, exist_ok=True)
        (self.root / "labels" / FINAL_TAG).mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._index = self._read_index(name)
        self._recover()

    # ---- index ----------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        """The JSON index file."""
        return self.root / INDEX_NAME

    def _read_index(self, name: str) -> dict[str, Any]:
        if self.index_path.is_file():
            index = json.loads(self.index_path.read_text())
            index.setdefault("objects", {})
            return index
        return {"name": name, "description": "scintipipe serve datastore", "images_dir": "images", "labels_dir": "labels", "objects": {}}

    def _recover(self) -> None:
        """Tidy what a crash mid-write left: delete temporary files and move files the index
        does not name (a write or delete cut short) to ``.recovered/``."""
        named = {self.root / "images" / f"{image_id}{obj['image']['ext']}" for image_id, obj in self._index["objects"].items()}
        named |= {
            self.root / "labels" / tag / f"{image_id}{label['ext']}"
            for image_id, obj in self._index["objects"].items()
            for tag, label in obj.get("labels", {}).items()
        }
        recovery: Path | None = None
        for folder in (self.root, self.root / "images", *(path for path in (self.root / "labels").iterdir() if path.is_dir())):
            for path in folder.iterdir():
                if not path.is_file():
                    continue
                if path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX):
                    path.unlink(missing_ok=True)
                elif folder != self.root and path not in named:
                    recovery = recovery or self._recovery_folder()
                    kept = recovery / path.relative_to(self.root)
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, kept)
                    LOG.warning(
                        "datastore: %s is not in the index (a write cut short?); moved to %s",
                        path.relative_to(self.root),
                        kept.relative_to(self.root),
                    )

    def _recovery_folder(self) -> Path:
        """A new folder under ``.recovered/`` for what this opening finds, named by the UTC time,
        so that a file recovered after one crash is never replaced by its namesake after the next."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        folder, n = self.root / RECOVERED / stamp, 1
        while folder.exists():
            n += 1
            folder = self.root / RECOVERED / f"{stamp}-{n}"
        return folder

    def _save_index(self) -> None:
        atomic_write_bytes(self.index_path, (json.dumps(self._index, indent=1, sort_keys=True) + "\n").encode())

    def json(self) -> dict[str, Any]:
        """The whole index (MONAI Label's ``?output=all``)."""
        with self._lock:
            return json.loads(json.dumps(self._index))

    def status(self) -> dict[str, Any]:
        """Counts: ``total`` images, ``completed`` (with a final label), labels per tag."""
        with self._lock:
            tags: dict[str, int] = {}
            for obj in self._index["objects"].values():
                for tag in obj.get("labels", {}):
                    tags[tag] = tags.get(tag, 0) + 1
            return {"total": len(self._index["objects"]), "completed": len(self.labelled_ids()), "label_tags": tags}

    def relative(self, path: str | Path) -> str | None:
        """``path`` relative to the datastore folder (``images/a.dcm``), or ``None`` outside it.

        Answers name files this way: a client never sees where the server keeps them.
        """
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def datalist(self) -> list[dict[str, Any]]:
        """Image and final-label files (relative to the datastore folder) of every labelled image, with the label info."""
        with self._lock:
            return [
                {
                    "image": self.relative(self.image_path(image_id)),
                    "label": self.relative(self.label_path(image_id)),
                    "label_info": self._index["objects"][image_id]["labels"][FINAL_TAG].get("info", {}),
                }
                for image_id in self.labelled_ids()
            ]

    # ---- images ---------------------------------------------------------------------

    def image_ids(self) -> list[str]:
        """Every image id, sorted."""
        with self._lock:
            return sorted(self._index["objects"])

    def labelled_ids(self, tag: str = FINAL_TAG) -> list[str]:
        """Ids of images with a label under ``tag``."""
        with self._lock:
            return sorted(k for k, v in self._index["objects"].items() if tag in v.get("labels", {}))

    def unlabelled_ids(self) -> list[str]:
        """Ids of images without a final label."""
        labelled = set(self.labelled_ids())
        return [image_id for image_id in self.image_ids() if image_id not in labelled]

    def has_image(self, image_id: str) -> bool:
        """Whether ``image_id`` is in the datastore."""
        with self._lock:
            return image_id in self._index["objects"]

    def _object(self, image_id: str) -> dict[str, Any]:
        obj = self._index["objects"].get(image_id)
        if obj is None:
            raise NotFound(f"no image {image_id!r} in the datastore")
        return obj

    def image_path(self, image_id: str) -> Path:
        """The stored file of ``image_id``.

        Raises:
            NotFound: no such image.
        """
        with self._lock:
            obj = self._object(image_id)
            return self.root / "images" / f"{image_id}{obj['image']['ext']}"

    def snapshot_image(self, image_id: str, folder: Path) -> Path:
        """A private copy of the stored image in ``folder`` (a hard link where possible),
        taken under the lock: a concurrent delete or replace cannot pull it away while it
        is read. The caller deletes it.

        Raises:
            NotFound: no such image.
        """
        with self._lock:
            source = self.image_path(image_id)
            handle, temp = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=self._object(image_id)["image"]["ext"])
            os.close(handle)
            copy = Path(temp)
            copy.unlink()
            try:
                os.link(source, copy)
            except OSError:
                shutil.copyfile(source, copy)
            return copy

    def add_image(self, image_id: str, source: Path, ext: str, info: dict[str, Any] | None = None) -> str:
        """Copy a checked image file in under ``image_id`` (replacing an earlier one).

        Args:
            image_id: a safe id (see :func:`check_id`).
            source: the uploaded file, already checked to be a scan.
            ext: the extension to keep (``.dcm``, ``.nii.gz``...).
            info: metadata to keep with the image.
        """
        check_id(image_id)
        with self._lock:
            old = self._index["objects"].get(image_id)
            target = self.root / "images" / f"{image_id}{ext}"
            atomic_copy(source, target)
            now = int(time.time())
            image_info = {**(info or {}), "ts": now, "name": target.name, "size_bytes": target.stat().st_size}
            labels = old.get("labels", {}) if old else {}
            self._index["objects"][image_id] = {"image": {"ext": ext, "info": image_info}, "labels": labels}
            self._save_index()
            if old and old["image"]["ext"] != ext:  # only once the index no longer names it
                (self.root / "images" / f"{image_id}{old['image']['ext']}").unlink(missing_ok=True)
        return image_id

    def image_info(self, image_id: str) -> dict[str, Any]:
        """The stored info of an image (``NotFound`` when unknown)."""
        with self._lock:
            return dict(self._object(image_id)["image"].get("info", {}))

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """Merge ``info`` into the image's info and save the index."""
        with self._lock:
            obj = self._object(image_id)
            obj["image"].setdefault("info", {}).update(info)
            self._save_index()
            return dict(obj["image"]["info"])

    def remove_image(self, image_id: str) -> None:
        """Delete an image and its labels."""
        with self._lock:
            obj = self._object(image_id)
            files = [self.root / "labels" / tag / f"{image_id}{label['ext']}" for tag, label in obj.get("labels", {}).items()]
            files.append(self.root / "images" / f"{image_id}{obj['image']['ext']}")
            del self._index["objects"][image_id]
            self._save_index()  # first: the index never names a deleted file
            for path in files:
                path.unlink(missing_ok=True)

    # ---- labels ---------------------------------------------------------------------

    def label_path(self, image_id: str, tag: str = FINAL_TAG) -> Path:
        """The stored label file of ``image_id`` under ``tag`` (``NotFound`` when none)."""
        with self._lock:
            label = self._object(image_id).get("labels", {}).get(tag)
            if label is None:
                raise NotFound(f"image {image_id!r} has no label tagged {tag!r}")
            return self.root / "labels" / tag / f"{image_id}{label['ext']}"

    def label_info(self, image_id: str, tag: str = FINAL_TAG) -> dict[str, Any]:
        """The info stored with a label (``NotFound`` when none)."""
        with self._lock:
            label = self._object(image_id).get("labels", {}).get(tag)
            if label is None:
                raise NotFound(f"image {image_id!r} has no label tagged {tag!r}")
            return dict(label.get("info", {}))

    def save_label(self, image_id: str, source: Path, ext: str, tag: str = FINAL_TAG, info: dict[str, Any] | None = None) -> str:
        """Store a checked label file atomically and record it in the index.

        The label file is written (temporary file + :func:`os.replace`) before the index
        names it, and the index itself is replaced atomically, so readers see either the
        old label or the new one, never a partial file.

        Returns:
            The label id (the image id).
        """
        check_id(tag, "label tag")
        with self._lock:
            obj = self._object(image_id)
            target = self.root / "labels" / tag / f"{image_id}{ext}"
            atomic_copy(source, target)
            old = obj.setdefault("labels", {}).get(tag)
            obj["labels"][tag] = {"ext": ext, "info": {**(info or {}), "ts": int(time.time()), "name": target.name}}
            self._save_index()
            if old and old["ext"] != ext:  # only once the index no longer names it
                (self.root / "labels" / tag / f"{image_id}{old['ext']}").unlink(missing_ok=True)
        return image_id

    def remove_label(self, image_id: str, tag: str = FINAL_TAG) -> None:
        """Delete one label of an image."""
        with self._lock:
            path = self.label_path(image_id, tag)
            del self._object(image_id)["labels"][tag]
            self._save_index()  # first: the index never names a deleted file
            path.unlink(missing_ok=True)
