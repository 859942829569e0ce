"""One error tree for Seamline.

    SeamlineError
    ├── ConfigError    a setting is missing or wrong (names the setting and how to fix it)
    ├── ChannelError   a channel (web, Telegram, VK) refused or failed a call
    │   └── Unreachable        the customer cannot be reached there (bot blocked, chat gone)
    ├── StoreError     a database or session store failed
    │   └── DuplicateMessage   a platform message id was seen before
    ├── NluError       the model is missing, corrupt or failed
    └── HandoffError   an escalation or agent action is not allowed

Third-party errors are translated at the boundary: ``raise StoreError(...) from exc``.
"""


class SeamlineError(Exception):
    """Base of every error Seamline raises on purpose."""


class ConfigError(SeamlineError):
    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting, self.problem, self.fix = setting, problem, fix
        super().__init__(f"{setting}: {problem}. {fix}")


class ChannelError(SeamlineError):
    pass


class Unreachable(ChannelError):
    pass


class StoreError(SeamlineError):
    pass


class DuplicateMessage(StoreError):
    pass


class NluError(SeamlineError):
    pass


class HandoffError(SeamlineError):
    pass
