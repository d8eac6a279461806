"""The Slack app manifests in manifests/: minimal scopes, the events and URLs the adapter uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.platforms.slack_settings import SlackSettings

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = {"socket": ROOT / "manifests/slack-socket-mode.json",
             "http": ROOT / "manifests/slack-http.json"}

# Web API method (as slack-sdk names it) -> bot scopes it needs. A method the adapter starts to
# call must be added here, and its scopes to the manifests, or the test below fails.
METHOD_SCOPES = {
    "auth_test": set(),
    "users_info": {"users:read"},
    "conversations_list": {"channels:read", "groups:read"},
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_replies": {"channels:history", "groups:history"},
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_delete": set(),  # only with the admin USER token, never the bot's
}
OPTIONAL_SCOPES = {"conversations_join": {"channels:join"}}  # [slack] auto_join only
OTHER_SCOPES = {
    "files:read",  # url_private downloads
    "commands",  # /leakwarden
}
EVENT_SCOPES = {  # bot events -> the scopes Slack requires for them
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "member_joined_channel": {"channels:read", "groups:read"},
}
CALL = re.compile(r"\.(auth_test|users_\w+|conversations_\w+|chat_\w+|files_\w+|reactions_\w+"
                  r"|pins_\w+|views_\w+)\b")


def load(mode: str) -> dict:
    return json.loads(MANIFESTS[mode].read_text(encoding="utf-8"))


def methods_called() -> set[str]:
    found = set()
    for path in (ROOT / "bot/platforms").glob("slack*.py"):
        found |= set(CALL.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_method_the_adapter_calls_is_accounted_for():
    unknown = methods_called() - set(METHOD_SCOPES) - set(OPTIONAL_SCOPES)
    assert unknown == set(), f"add these to METHOD_SCOPES and the manifests: {unknown}"


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_scopes_are_exactly_the_minimal_set(mode):
    needed = set().union(*(METHOD_SCOPES[m] for m in methods_called() if m in METHOD_SCOPES))
    needed |= OTHER_SCOPES | set().union(*EVENT_SCOPES.values())
    assert set(load(mode)["oauth_config"]["scopes"]["bot"]) == needed
    assert "user" not in load(mode)["oauth_config"]["scopes"]  # no user token asked for


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_events_are_the_ones_the_adapter_handles(mode):
    assert set(load(mode)["settings"]["event_subscriptions"]["bot_events"]) == set(EVENT_SCOPES)
    assert load(mode)["settings"]["interactivity"]["is_enabled"] is True
    [command] = load(mode)["features"]["slash_commands"]
    assert command["command"] == "/leakwarden"


def test_socket_mode_manifest_has_no_public_urls():
    doc = load("socket")
    assert doc["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in json.dumps(doc) and '"url"' not in json.dumps(doc)


def test_http_manifest_urls_end_in_the_default_paths():
    doc, settings = load("http"), SlackSettings()
    assert doc["settings"]["socket_mode_enabled"] is False
    urls = {
        settings.events_path: doc["settings"]["event_subscriptions"]["request_url"],
        settings.interactivity_path: doc["settings"]["interactivity"]["request_url"],
        settings.commands_path: doc["features"]["slash_commands"][0]["url"],
    }
    for path, url in urls.items():
        assert url.startswith("https://") and url.endswith(path), (path, url)


def test_the_readme_links_both_manifests():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in MANIFESTS.values():
        assert f"]({path.relative_to(ROOT)})" in readme
