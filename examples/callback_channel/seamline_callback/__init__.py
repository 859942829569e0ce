"""The tutorial channel of Seamline's docs/channels.md: a messenger that speaks plain HTTP both ways."""

from seamline_callback.channel import CallbackChannel

__all__ = ["CallbackChannel"]
