"""DICOM over the network: a C-STORE listener that runs the pipeline on the studies it receives, and results sent back.

- :mod:`scintipipe.dicomnet.store`: the listener's folder (received instances, journal,
  results), every write atomic, so that a crash or restart loses nothing and processes
  nothing twice.
- :mod:`scintipipe.dicomnet.listener`: the storage SCP (pynetdicom), the idle-time study
  scheduler and the processing thread.
- :mod:`scintipipe.dicomnet.sender`: C-STORE and STOW-RS destinations.
- :mod:`scintipipe.dicomnet.outbox`: results waiting to be sent, retried with back-off.
- :mod:`scintipipe.dicomnet.pull`, :mod:`~scintipipe.dicomnet.fetch`, :mod:`~scintipipe.dicomnet.retrieve`:
  ``scintipipe run --from-pacs``, a study pulled by WADO-RS, C-GET or C-MOVE.

Commands: ``scintipipe listen`` and ``scintipipe outbox`` (:mod:`scintipipe.builtin.listen_command`).
pynetdicom and dicomweb-client are the ``dicom-network`` extra; importing this package
imports neither (each module imports them where it uses them). See docs/dicom_network.md.
"""
