"""VOT challenge integration: lorat as a TraX tracker for the VOT toolkit (``vot-toolkit``).

* :mod:`.server` - the TraX server loop behind ``lorat vot-server`` (rectangle regions in and out,
  the tracker's confidence reported as the ``confidence`` property).
* :mod:`.registry` - the ``trackers.ini`` entry written by ``lorat vot-setup``.
* :mod:`.testing` - an offline toolkit workspace (local sequences and stack) for tests and smoke checks.

Nothing here is imported by ``import modeling_lorat``; the TraX bindings (``vot-trax``) and the toolkit
are optional (``pip install "lorat[vot]"``).
"""
