"""The names of the handoff states, in one place for every package.

``handoff/machine.py`` holds the transitions between them; ``shared`` (sessions, linking) needs
the names too but must not import ``handoff``, so they live here and the machine uses them.
Adding a state means giving it a rank: a test checks that every state has one.
"""

from __future__ import annotations

STATES = ("bot", "queued", "with_agent", "transferred", "resolved", "abandoned")
BOT_SILENT = frozenset({"with_agent", "transferred"})  # a person holds it: the bot stays quiet
WITH_PEOPLE = frozenset({"queued", "with_agent", "transferred"})  # in a queue or with a person

# When two customers are linked, their sessions become one; the conversation in the higher state
# leads (a person holding it beats a queue, which beats the bot), so nobody waiting for a person
# loses their place. A transfer is still held by people (on its way to another agent or queue).
MERGE_RANK = {"resolved": 0, "abandoned": 0, "bot": 1, "queued": 2, "transferred": 3, "with_agent": 4}
