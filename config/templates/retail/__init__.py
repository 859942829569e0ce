"""The retail template's extras: ``conversations/`` (its conversation tests) and ``actions/`` (its
custom actions, copied into a project's ``actions/`` by ``seamline init --template retail``)."""
