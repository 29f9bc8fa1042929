"""A datastore over a PACS: images listed by QIDO-RS and fetched by WADO-RS into a local cache.

``scintipipe serve --dicomweb-url URL`` opens :class:`DicomwebDatastore` instead of the
plain folder datastore. It is the same folder, index and routes
(:class:`~scintipipe.server.datastore.Datastore`), with these differences:

- **Listing.** The index holds every NM and Secondary Capture instance the PACS lists
  (QIDO-RS at instance level, one query per modality), scintipipe's own results left out.
  An image's id is its SeriesInstanceUID, as MONAI Label's OHIF and Slicer plugins name
  images, or its SOPInstanceUID when the series holds several instances. Its info records
  ``StudyInstanceUID``, ``SeriesInstanceUID``, ``SOPInstanceUID``, ``Modality`` and
  ``source: "dicomweb"``. The listing is refreshed when it is older than
  :data:`REFRESH_SECONDS` and a client asks for it, and at once when a request names a UID
  it does not hold (at most once a second for such misses).
- **Fetching.** An image's file is fetched by WADO-RS the first time it is read (inference,
  download, active learning, training) and kept in ``images/<id>.dcm``, written atomically.
- **Labels** stay in the local store (``labels/<tag>/<id>.<ext>``), as without a PACS, with
  the image's three UIDs added to the label info: nothing is written to the PACS.
- **Uploads** (``PUT /datastore/image``) stay local too; deleting an image that lives in the
  PACS is refused (it would come back with the next listing).

An unreachable PACS fails :class:`DicomwebDatastore` at start-up with
:class:`~scintipipe.server.errors.BadGateway` naming the URL; later, a failed listing keeps
the last one (with a warning in the log), and a failed fetch answers 502.
``dicomweb-client`` and ``requests`` (the ``dicom-network`` extra) are imported only here.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scintipipe.server.datastore import FINAL_TAG, Datastore, DatastoreError, atomic_write_bytes, check_id
from scintipipe.server.errors import BadGateway, BadRequest

LOG = logging.getLogger(__name__)
SOURCE = "dicomweb"
MODALITIES = ("NM", "SC")
REFRESH_SECONDS = 30.0
MISS_REFRESH_SECONDS = 1.0
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
OWN_MANUFACTURER = "scintipipe developers"  # scintipipe.dicomnet.listener.OWN_MANUFACTURER, without importing pynetdicom
UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
#: QIDO-RS attributes asked for besides the defaults, as (DICOM keyword, tag in DICOM JSON, key in the image info)
FIELDS = (
    ("StudyInstanceUID", "0020000D", "StudyInstanceUID"),
    ("SeriesInstanceUID", "0020000E", "SeriesInstanceUID"),
    ("SOPInstanceUID", "00080018", "SOPInstanceUID"),
    ("Modality", "00080060", "Modality"),
    ("PatientID", "00100020", "PatientID"),
    ("StudyDate", "00080020", "StudyDate"),
    ("SeriesDescription", "0008103E", "SeriesDescription"),
    ("Manufacturer", "00080070", "Manufacturer"),
    ("Rows", "00280010", "rows"),
    ("Columns", "00280011", "columns"),
)


def public_url(url: str) -> str:
    """``url`` without a ``user:password@`` part, for messages and the index."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def json_value(item: dict[str, Any], tag: str) -> Any:
    """The first value of ``tag`` in a DICOM JSON object, or ``None``."""
    values = (item.get(tag) or {}).get("Value") or [None]
    value = values[0]
    return value.get("Alphabetic") if isinstance(value, dict) else value


@dataclass(frozen=True)
class DicomwebSource:
    """A DICOMweb service (QIDO-RS, WADO-RS) and how to reach it.

    Attributes:
        url: the DICOMweb root (Orthanc: ``http://host:8042/dicom-web``).
        token: a bearer token (``Authorization: Bearer ...``), if the service needs one.
        user: ``(user, password)`` for HTTP basic authentication, if it needs them.
        timeout: seconds for each request.
    """

    url: str
    token: str | None = None
    user: tuple[str, str] | None = None
    timeout: float = 30.0

    @property
    def name(self) -> str:
        """The URL without credentials, for messages."""
        return public_url(self.url.rstrip("/"))

    def client(self) -> Any:
        """A ``dicomweb_client.DICOMwebClient`` with the credentials."""
        from scintipipe.dicomnet.dicomweb import dicomweb_client

        return dicomweb_client(self.url, self.token, self.user, self.timeout)

    def failure(self, what: str, exc: Exception) -> BadGateway:
        """A :class:`BadGateway` saying what failed at the PACS, and why."""
        from scintipipe.dicomnet.dicomweb import failure_reason

        reason = failure_reason(exc, bool(self.token or self.user), "--dicomweb-token or --dicomweb-user")
        return BadGateway(f"DICOMweb {what} at {self.name}: {reason}")

    def list_instances(self) -> list[dict[str, Any]]:
        """Every NM and SC instance the PACS lists, as image info (scintipipe's own results left out).

        Raises:
            BadGateway: the PACS cannot be reached or answers an error.
        """
        client = self.client()
        rows: list[dict[str, Any]] = []
        for modality in MODALITIES:
            try:
                found = client.search_for_instances(
                    search_filters={"Modality": modality}, fields=[keyword for keyword, _, _ in FIELDS], get_remaining=True
                )
            except Exception as exc:  # requests and dicomweb-client raise many types; each is a failed listing
                raise self.failure("search (QIDO-RS)", exc) from exc
            for item in found:
                info = {key: json_value(item, tag) for _, tag, key in FIELDS}
                if info.pop("Manufacturer") == OWN_MANUFACTURER or not all(info[key] for key in UID_KEYS):
                    continue
                info["Modality"] = info["Modality"] or modality
                rows.append({key: value for key, value in info.items() if value is not None})
        return rows

    def fetch(self, info: dict[str, Any]) -> bytes:
        """The DICOM file of the instance ``info`` names (its three UIDs), by WADO-RS.

        Raises:
            BadGateway: the PACS cannot be reached, answers an error or lacks the instance.
        """
        uids = [str(info[key]) for key in UID_KEYS]
        try:
            dataset = self.client().retrieve_instance(*uids)
        except Exception as exc:  # requests and dicomweb-client raise many types; each is a failed fetch
            raise self.failure(f"retrieve (WADO-RS) of instance {uids[2]}", exc) from exc
        buffer = BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()


def image_ids(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each listed instance under its image id: the SeriesInstanceUID, or the SOPInstanceUID in a series of several."""
    per_series: dict[str, int] = {}
    for row in rows:
        per_series[row["SeriesInstanceUID"]] = per_series.get(row["SeriesInstanceUID"], 0) + 1
    listed = {}
    for row in rows:
        image_id = row["SeriesInstanceUID"] if per_series[row["SeriesInstanceUID"]] == 1 else row["SOPInstanceUID"]
        try:
            listed[check_id(image_id)] = row
        except DatastoreError:
            LOG.warning("dicomweb datastore: instance %s has an unusable UID; not listed", row["SOPInstanceUID"])
    return listed


class DicomwebDatastore(Datastore):
    """The datastore folder as a cache of the images a PACS lists (see the module docstring).

    Args:
        root: the cache folder (created when missing); it remembers the URL and refuses another.
        source: the DICOMweb service.
        name: shown in the index.

    Raises:
        BadGateway: the PACS cannot be reached or answers an error (the message names the URL).
        DatastoreError: the folder caches another PACS.
    """

    def __init__(self, root: str | Path, source: DicomwebSource, name: str = "scintipipe"):
        super().__init__(root, name)
        self.source = source
        self._listed_at = self._missed_at = 0.0
        self._fetching: dict[str, threading.Lock] = {}
        known = self._index.get("dicomweb_url")
        if known not in (None, source.name):
            raise DatastoreError(f"the datastore folder caches the PACS at {known}, not {source.name}; give another --datastore folder")
        if known is None:
            self._index["dicomweb_url"] = source.name
            self._save_index()
        self.refresh(strict=True)

    # ---- listing ---------------------------------------------------------------------

    def refresh(self, strict: bool = False, max_age: float = 0.0) -> None:
        """Bring the index in line with the PACS listing, unless it is younger than ``max_age`` seconds.

        Images no longer listed are dropped with their cached file, unless they have labels
        (then their info says ``in_pacs: false``). Local uploads are left alone.

        Raises:
            BadGateway: with ``strict``, when the PACS cannot be listed (else logged, and the last listing kept).
        """
        if time.monotonic() - self._listed_at < max_age:
            return
        try:
            listed = image_ids(self.source.list_instances())
        except BadGateway as exc:
            self._listed_at = time.monotonic()  # not again at once
            if strict:
                raise
            LOG.warning("%s; keeping the last listing", exc)
            return
        with self._lock:
            objects = self._index["objects"]
            before = json.dumps(objects, sort_keys=True)
            for image_id, row in listed.items():
                obj = objects.get(image_id)
                if obj is None:
                    objects[image_id] = {"image": {"ext": ".dcm", "info": {**row, "source": SOURCE, "ts": int(time.time())}}, "labels": {}}
                elif obj["image"].get("info", {}).get("source") == SOURCE:
                    obj["image"]["info"].update(row, in_pacs=True)
            for image_id in [key for key, obj in objects.items() if key not in listed and obj["image"].get("info", {}).get("source") == SOURCE]:
                if objects[image_id].get("labels"):
                    objects[image_id]["image"]["info"]["in_pacs"] = False
                    continue
                del objects[image_id]
                self._save_index()  # first: the index never names a deleted file
                (self.root / "images" / f"{image_id}.dcm").unlink(missing_ok=True)
            if json.dumps(objects, sort_keys=True) != before:
                self._save_index()
            self._listed_at = time.monotonic()

    def json(self) -> dict[str, Any]:
        """The whole index, refreshed when stale."""
        self.refresh(max_age=REFRESH_SECONDS)
        return super().json()

    def status(self) -> dict[str, Any]:
        """Counts, refreshed when stale, with the PACS URL."""
        self.refresh(max_age=REFRESH_SECONDS)
        return {**super().status(), "dicomweb": self.source.name}

    def image_ids(self) -> list[str]:
        """Every image id, refreshed when stale."""
        self.refresh(max_age=REFRESH_SECONDS)
        return super().image_ids()

    def _known(self, image_id: str) -> None:
        """Refresh the listing when ``image_id``, a UID, is not in it (at most every :data:`MISS_REFRESH_SECONDS` for such misses)."""
        if self.has_image(image_id) or not UID.match(image_id) or time.monotonic() - self._missed_at < MISS_REFRESH_SECONDS:
            return
        self._missed_at = time.monotonic()
        self.refresh()

    # ---- images ------------------------------------------------------------------------

    def image_info(self, image_id: str) -> dict[str, Any]:
        """The image's info, the listing refreshed first when the id is new."""
        self._known(image_id)
        return super().image_info(image_id)

    def image_path(self, image_id: str) -> Path:
        """The cached file of ``image_id``, fetched by WADO-RS first when it is not cached yet.

        Raises:
            NotFound: no such image.
            BadGateway: the fetch failed.
        """
        self._known(image_id)
        path = super().image_path(image_id)
        if path.is_file():
            return path
        info = super().image_info(image_id)
        if info.get("source") != SOURCE:
            return path
        with self._lock:
            lock = self._fetching.setdefault(image_id, threading.Lock())
        fetched = False
        with lock:  # one fetch per image at a time; the others wait for its file (never take self._lock in here)
            if not path.is_file():
                atomic_write_bytes(path, self.source.fetch(info))
                fetched = True
        if fetched and not self.has_image(image_id):  # dropped by a refresh meanwhile
            path.unlink(missing_ok=True)
        return super().image_path(image_id)

    def snapshot_image(self, image_id: str, folder: Path) -> Path:
        """A private copy of the image, fetched first when it is not cached."""
        self.image_path(image_id)  # outside the lock: a fetch does not hold up other requests
        return super().snapshot_image(image_id, folder)

    def remove_image(self, image_id: str) -> None:
        """Delete a local upload; refuse an image that lives in the PACS.

        Raises:
            BadRequest: the image comes from the PACS.
        """
        if super().image_info(image_id).get("source") == SOURCE:
            raise BadRequest(f"image {image_id!r} lives in the PACS at {self.source.name}; it is only cached here (delete it in the PACS)")
        super().remove_image(image_id)

    # ---- labels ------------------------------------------------------------------------

    def save_label(self, image_id: str, source: Path, ext: str, tag: str = FINAL_TAG, info: dict[str, Any] | None = None) -> str:
        """Store the label locally, with the image's Study, Series and SOP Instance UIDs in its info."""
        image = super().image_info(image_id)
        uids = {key: image[key] for key in UID_KEYS if key in image}
        return super().save_label(image_id, source, ext, tag, {**(info or {}), **uids})


def source_from_options(url: str, token: str | None = None, user: str | None = None) -> DicomwebSource:
    """The :class:`DicomwebSource` of ``--dicomweb-url``, ``--dicomweb-token`` and ``--dicomweb-user``.

    Example:
        >>> source_from_options("http://pacs:8042/dicom-web/", user="reader:secret").user
        ('reader', 'secret')

    Raises:
        ValueError: the URL is not ``http(s)://``, or the user is not ``USER:PASSWORD``.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r}: give the DICOMweb root as an http(s):// URL (Orthanc: http://pacs:8042/dicom-web)")
    credentials = None
    if user is not None:
        name, colon, password = user.partition(":")
        if not colon or not name:
            raise ValueError("--dicomweb-user: give USER:PASSWORD")
        credentials = (name, password)
    return DicomwebSource(url.rstrip("/"), token=token or None, user=credentials)
