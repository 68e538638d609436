"""The classroom half of labkit: what a teacher runs around the lab, by workflow stage.

* hand out: ``student`` (the student edition), ``teacher`` (the teacher's page);
* run: ``runner`` (``labkit run``: notebooks executed headlessly);
* grade: ``report`` (the pair's report table, read in notebook 05), ``export`` (``labkit export``: sanitised pages and
  the gradebook; ``_sanitize`` is its HTML sanitiser).

The lab itself (data, models, metrics, seeds, plots and the topic modules) lives flat in ``labkit``.
"""
