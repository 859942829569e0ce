"""The fixtures the security tests share with the tests of the parts they attack: the agent API's
(a running Seamline with a recording Telegram channel, agents made on demand), the agents CLI's
environment and both inboxes. Brought in here once, so a test module asks for them by name only."""

from tests.handoff.test_agents_cli import env
from tests.handoff.test_api import agent, seamline, telegram
from tests.handoff.test_inbox import make_inbox

__all__ = ["agent", "env", "make_inbox", "seamline", "telegram"]
