"""Passing a conversation from the bot to people: escalation, queues, agents."""
