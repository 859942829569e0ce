"""Local fake Telegram Bot API and VK API servers (aiohttp on 127.0.0.1) that speak the real wire format.

They are part of Seamline: use them to test your own bots the same way (see docs/testing-channels.md).
"""
