"""A local fake Slack for tests and the demo; the real slack-sdk clients connect to it."""

from bot.sandbox.slack.server import SlackSandbox, sign

__all__ = ["SlackSandbox", "sign"]
