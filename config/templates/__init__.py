"""Data and example code shipped in the wheel: ``minimal/``, ``project/`` (the files every project gets)
and ``retail/`` (the retail template's example actions; its config is the repository's ``config/``).
A package only so that ``seamline.config.templates.retail.actions`` imports (``make run``)."""
