"""Who may read and act on which conversation (docs/handoff.md, "Who may read and act on what").

- An admin may read and act on every conversation.
- An agent may read a conversation that names them (given or transferred to them, held or
  resolved by them), or one of a queue among their skills (an agent with no skills listed has
  every queue). Reading is the context (the customer's whole history), the list, the live events
  of a conversation they open, and notes (writing one too).
- An agent may claim a waiting conversation of their skills, or one transferred to them by name;
  they may reply and transfer only what they hold, and return to the bot or resolve what they hold
  or a waiting conversation of their skills.

Each refusal says why; the API answers it with 403 and that reason.
"""

from __future__ import annotations

from seamline.handoff.agents import Agent


def has_skill(agent: Agent, queue: str | None, default_queue: str) -> bool:
    return agent.is_admin or not agent.queues or (queue or default_queue) in agent.queues


def refusal(agent: Agent, *, queue: str | None, agent_id: str | None, default_queue: str) -> str | None:
    """Why ``agent`` may neither read nor take up this conversation, or None when they may."""
    if agent.is_admin or agent_id == agent.id or has_skill(agent, queue, default_queue):
        return None
    return f"the conversation is in the {queue or default_queue} queue, which is not among your skills"
