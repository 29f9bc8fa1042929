"""Case and batch reports: JSON, HTML (and PDF), DICOM SR and Secondary Capture.

Modules: :mod:`content` (what every format says), :mod:`render` (pictures),
:mod:`html` (pages), :mod:`chromium` (PDF printing), :mod:`dicom_source`, :mod:`codes`,
:mod:`dicom_sr` and :mod:`secondary_capture` (DICOM results). ``docs/reports.md``
describes the files a run writes.
"""
