"""A local fake Discord for tests and the demo; the real discord.py client connects to it."""

from bot.sandbox.discord.server import DiscordSandbox

__all__ = ["DiscordSandbox"]
