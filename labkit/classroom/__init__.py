"""The classroom half of labkit: what a teacher runs around the lab, by workflow stage.

* hand out: ``student`` (the student edition), ``teacher`` (the teacher's page);
* run: ``runner`` (``labkit run``: notebooks executed headlessly);
* grade: ``group`` (the report's group cell: names and student ids), ``report`` (the pair's report table, read in
  notebook 05, with whose run produced each row), ``export`` (``labkit export``: sanitised pages; ``_sanitize`` is its
  HTML sanitiser), ``gradebook`` (the export's ``gradebook.csv`` per student for an LMS and ``metrics.csv``).

The lab itself (data, models, metrics, seeds, plots and the topic modules) lives flat in ``labkit``.
"""
