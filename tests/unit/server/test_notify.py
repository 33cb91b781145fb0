"""`[notify]`: the config model, and the messages built from a plan (offline)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from interlock.server import notify
from interlock.server.config import parse_config
from interlock.server.errors import ConfigError
from interlock.server.plans import Plan, Status

TARGET = '[targets.prod]\nkind = "aws"\n'
HOSTILE = "ship <!channel> & <https://evil.example|click>\x1b[2J\r\n\u202ekcilc\x00done"


def plan(reason: str = "rotate the logs", **kw: object) -> Plan:
    fields: dict[str, object] = {
        "target": "prod",
        "target_kind": "aws",
        "playground": False,
        "tool": "delete_s3_objects",
        "args": {"bucket": "logs", "prefix": "tmp/"},
        "reason": reason,
        "footprint": {},
        "baseline_fingerprint": "",
        "baseline": {},
        "changes": [
            {"address": "aws:s3:::logs/tmp/1", "action": "delete"},
            {"address": "aws:s3:::logs/tmp/2", "action": "delete"},
            {"address": "aws:s3:::logs/new", "action": "create"},
        ],
        "risk": ["destructive", "bulk"],
        "required_approvals": 2,
        "expires_at": time.time() + 60,
        "created_at": time.time(),
        "id": 7,
    }
    fields.update(kw)
    return Plan(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- config


def test_notify_is_off_unless_configured() -> None:
    assert parse_config(TARGET, "t.toml").notify is None


def test_notify_takes_a_command_a_webhook_and_a_timeout() -> None:
    cfg = parse_config(
        TARGET + '[notify]\ncommand = ["notify-send", "interlock"]\n'
        'webhook = "https://hooks.slack.com/services/T/B/X"\ntimeout_seconds = 2.5\n',
        "t.toml",
    )
    assert cfg.notify is not None
    assert cfg.notify.command == ["notify-send", "interlock"]
    assert cfg.notify.webhook == "https://hooks.slack.com/services/T/B/X"
    assert cfg.notify.timeout_seconds == 2.5
    only = parse_config(TARGET + '[notify]\nwebhook = "http://127.0.0.1:9/x"\n', "t.toml").notify
    assert only is not None and only.timeout_seconds == 5 and only.command is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "notify: [notify] sets neither command nor webhook: add one of them"),
        ('command = "notify-send hi"', "notify.command: is the string 'notify-send hi': write it as a list"),
        ("command = []", "notify.command: is empty: name a program"),
        ('command = [" "]', "notify.command[0] is blank"),
        ('command = ["x", "a\\u0000b"]', "notify.command[1] contains a NUL character"),
        ('command = ["x", 3]', "notify.command[1]: Input should be a valid string"),
        ('webhook = "ftp://example.com/x"', "notify.webhook: 'ftp://example.com/x' is not an http(s) URL"),
        ('webhook = "hooks.slack.com/x"', 'is not an http(s) URL: write e.g. webhook = "https://'),
        ('webhook = "https://example.com/a b"', "notify.webhook: contains whitespace or a control character"),
        (
            'webhook = "https://x"\ntimeout_seconds = 0',
            "notify.timeout_seconds: 0 is out of range: use 0.1 to 60",
        ),
        ('webhook = "https://x"\ntimeout_seconds = 61', "notify.timeout_seconds: 61 is out of range"),
        ('webhook = "https://x"\ntimeout_seconds = nan', "notify.timeout_seconds: nan is out of range"),
        (
            'webhook = "https://x"\ntimeout_seconds = "5"',
            "notify.timeout_seconds: '5' is not a number of seconds",
        ),
        ('webhook = "https://x"\ntimeout_seconds = true', "notify.timeout_seconds: True is not a number"),
        (
            'webhook = "https://x"\ntimout_seconds = 5',
            "notify.timout_seconds: unknown key (did you mean 'timeout_seconds'?",
        ),
    ],
)
def test_notify_mistakes_name_the_key_and_the_fix(body: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(TARGET + "[notify]\n" + body + "\n", "t.toml")
    assert expected in exc.value.message
    assert exc.value.hint


# ---------------------------------------------------------------- messages


def test_slack_text_escapes_ampersand_and_angle_brackets() -> None:
    text = notify.message_text(notify.pending_notice(plan(HOSTILE)), slack=True)
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text
    assert "&amp;lt;" not in text  # escaped once, not twice
    assert text.endswith("Approve: `interlock approve 7`")


def test_text_shows_control_and_invisible_characters_as_escapes() -> None:
    for slack in (False, True):
        text = notify.message_text(notify.pending_notice(plan(HOSTILE)), slack=slack)
        assert "\\x1b[2J\\r\\n\\u202ekcilc\\x00done" in text
        assert not any(ord(ch) < 0x20 or ch in "\x7f\u202e" for ch in text)


def test_the_pending_message_names_the_plan_the_change_and_the_approve_command() -> None:
    n = notify.pending_notice(plan())
    assert notify.message_text(n) == (
        "interlock: plan 7 on prod waits for approval: delete_s3_objects +1 ~0 -2 -/+0; "
        "risk: destructive, bulk; needs 2 approvals. Reason: rotate the logs. Approve: interlock approve 7"
    )
    assert "(PLAYGROUND)" in notify.message_text(notify.pending_notice(plan(playground=True)))


def test_the_payload_carries_agent_text_exactly_as_data() -> None:
    body = notify.payload(notify.pending_notice(plan(HOSTILE)))
    assert body["reason"] == HOSTILE
    assert body["event"] == "plan.pending" and body["plan_id"] == 7
    assert body["target"] == "prod" and body["tool"] == "delete_s3_objects"
    assert body["summary"] == {"create": 1, "update": 0, "delete": 2, "replace": 0}
    assert body["risk"] == ["destructive", "bulk"] and body["required_approvals"] == 2
    assert body["approve_command"] == "interlock approve 7"
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
    wire = json.dumps(body, ensure_ascii=True)  # what the webhook sends
    assert json.loads(wire)["reason"] == HOSTILE and wire.isascii()


def test_a_long_reason_is_cut_in_the_text_but_whole_in_the_payload() -> None:
    reason = "x" * 3000
    body = notify.payload(notify.pending_notice(plan(reason)))
    assert body["reason"] == reason
    assert "x" * notify.REASON_IN_TEXT + "… (2500 more characters)" in body["text"]


def test_the_environment_holds_the_notice_one_visible_line_per_variable() -> None:
    env = notify.environment(notify.pending_notice(plan(HOSTILE)), base={"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert env["INTERLOCK_EVENT"] == "plan.pending"
    assert env["INTERLOCK_PLAN_ID"] == "7"
    assert env["INTERLOCK_TARGET"] == "prod"
    assert env["INTERLOCK_TOOL"] == "delete_s3_objects"
    assert env["INTERLOCK_SUMMARY"] == "+1 ~0 -2 -/+0"
    assert env["INTERLOCK_RISK"] == "destructive,bulk"
    assert env["INTERLOCK_REQUIRED_APPROVALS"] == "2"
    assert env["INTERLOCK_APPROVE_COMMAND"] == "interlock approve 7"
    assert env["INTERLOCK_REASON"].endswith("\\x1b[2J\\r\\n\\u202ekcilc\\x00done")
    assert "Approve: interlock approve 7" in env["INTERLOCK_TEXT"]
    assert json.loads(env["INTERLOCK_JSON"])["reason"] == HOSTILE
    for value in env.values():  # an environment cannot hold NUL; a script may echo any of these
        assert not any(ord(ch) < 0x20 or ch in "\x7f\u202e" for ch in value)


def test_a_denial_and_a_divergence_say_what_happened() -> None:
    denied = notify.denied_notice(
        {"tool": "put_s3_object", "rule": "deny[0] <x>", "error": "the site & its keys are hands-off"},
        "prod",
        None,
    )
    assert notify.message_text(denied, slack=True) == (
        "interlock: denied put_s3_object on prod by rule deny[0] &lt;x&gt;: the site &amp; its keys are hands-off"
    )
    body = notify.payload(denied)
    assert body["event"] == "call.denied" and body["approve_command"] is None and body["plan_id"] is None

    p = plan(
        status=Status.DIVERGED,
        outcome={"mismatched": [f"aws:s3:::logs/{i}" for i in range(7)], "unplanned": ["aws:s3:::logs/x"]},
    )
    diverged = notify.diverged_notice(p)
    text = notify.message_text(diverged, slack=True)
    assert text.startswith("interlock: plan 7 on prod DIVERGED: delete_s3_objects was applied")
    assert "aws:s3:::logs/4 and 3 more" in text and text.endswith("Inspect it: `interlock show 7`")
    assert notify.payload(diverged)["addresses"][-1] == "aws:s3:::logs/x"


def test_desktop_text_escapes_markup_and_control_characters() -> None:
    title, body = notify.desktop_text([plan("<b>now</b>\x1b[2J")])
    assert title == "interlock: plan 7 waits for approval"
    assert "&lt;b&gt;now&lt;/b&gt;\\x1b[2J" in body and "<" not in body and "\x1b" not in body
    title, _ = notify.desktop_text([plan(), plan(id=8)])
    assert title == "interlock: 2 plans wait for approval"


def test_desktop_notify_is_skipped_without_notify_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert notify.desktop_notify([plan()]) is False


def test_the_hooks_return_at_once_and_never_raise_when_delivery_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every delivery is held on an event that is set only after the hooks are back, and records
    # that it ended either way: a hook that waited for its delivery would be back only after one
    # had ended.
    release, ended = threading.Event(), []

    def held(argv: list[str], n: notify.Notice, timeout: float) -> None:
        release.wait(10)
        ended.append(n.event)
        raise notify.DeliveryFailed("the notifier does not exist")

    monkeypatch.setattr(notify, "run_command", held)
    cfg = parse_config(TARGET + '[notify]\ncommand = ["/nonexistent/interlock-notifier"]\n', "t.toml")
    notify.plan_stored(cfg, None, plan())  # type: ignore[arg-type]
    notify.call_denied(cfg, None, {"tool": "x", "error": "no"}, "prod", None)  # type: ignore[arg-type]
    assert notify.apply_ended(cfg, None, plan(status=Status.APPLIED)).status is Status.APPLIED  # type: ignore[arg-type]
    assert ended == []  # all three are back while their deliveries are still held
    release.set()
    n = notify.notifier_for(cfg)
    assert n is not None and n.idle(10)  # both delivered (and failed, logged) in the background
    notify.plan_stored(parse_config(TARGET, "t.toml"), None, plan())  # type: ignore[arg-type]  # no [notify]
