"""Data only, shipped in the wheel: this folder is the ``retail`` template's config (the demo shop
``make run`` serves), and ``templates/`` holds the ``minimal`` template and the files every project
gets. ``seamline init`` copies them into a new bot project (bots/project.py)."""
