"""`interlock guard`: what a client's pre-tool hook blocks and lets through (an accident guard)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interlock.server import guard
from interlock.server.guard import check, run_hook
from interlock.tools import ALL_SPECS

ROOT = Path(__file__).resolve().parents[3]


def claude(command: str) -> str:
    """The JSON Claude Code sends a PreToolUse hook for a Bash call."""
    return json.dumps(
        {
            "session_id": "abc123",
            "transcript_path": "/home/u/.claude/projects/p/abc123.jsonl",
            "cwd": "/home/u/p",
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": command, "description": "do it"},
            "tool_use_id": "toolu_01",
        }
    )


BLOCKED = [
    ("aws s3 rm s3://logs/app.log", ("delete_s3_objects",)),
    ("aws s3 rm --recursive s3://logs/", ("delete_s3_objects",)),
    ("aws --profile prod --region eu-west-1 s3 rb s3://logs --force", ("delete_s3_bucket",)),
    ("aws s3 cp ./a.txt s3://b/a.txt", ("put_s3_object",)),
    ("aws s3 cp s3://a/k s3://b/k", ("copy_s3_object",)),
    ("aws s3 cp s3://a/k ./k", ("get_s3_object",)),
    ("echo hi | aws s3 cp - s3://b/k", ("put_s3_object",)),
    ("aws s3api put-bucket-policy --bucket b --policy file://p.json", ("put_s3_bucket_policy",)),
    ("aws s3api delete-objects --bucket b --delete file://d.json", ("delete_s3_objects",)),
    ("aws dynamodb delete-table --table-name orders", ("delete_dynamodb_table", "recreate_dynamodb_table")),
    (
        "aws --region eu-west-1 iam attach-role-policy --role-name r --policy-arn p",
        ("attach_iam_role_policy",),
    ),
    ("aws sqs purge-queue --queue-url u", ("purge_sqs_queue",)),
    ("aws ssm put-parameter --name n --value v", ("put_ssm_parameter",)),
    ("aws ec2 authorize-security-group-ingress --group-id sg-1", ("authorize_ec2_security_group_ingress",)),
    ("aws lambda update-function-configuration --function-name f", ("update_lambda_function_configuration",)),
    ("aws s3 ls", ("list_s3_buckets", "list_s3_objects")),
    ("aws ec2 terminate-instances --instance-ids i-1", ()),
    ("docker exec -it web sh", ("exec_in_container",)),
    ("docker rm -f web", ("remove_container",)),
    ("docker container rm web", ("remove_container",)),
    ("docker -H unix:///x.sock run --rm busybox", ("run_container",)),
    ("docker ps -a", ("list_containers",)),
    ("docker compose down -v", ()),
    ("docker-compose up -d", ()),
    # reached through the shell
    ("sudo aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("sudo -u deploy -E docker rm web", ("remove_container",)),
    ("AWS_PROFILE=prod aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("/usr/local/bin/aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("cd infra && aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("make build; docker rm web", ("remove_container",)),
    ("false || aws s3 rb s3://b", ("delete_s3_bucket",)),
    ("git status\ndocker rm web", ("remove_container",)),
    ("(cd /tmp && docker rm web)", ("remove_container",)),
    ("echo $(aws s3 ls)", ("list_s3_buckets", "list_s3_objects")),
    ('echo "`docker ps`"', ("list_containers",)),
    ("diff <(aws s3 ls s3://a) <(aws s3 ls s3://b)", ("list_s3_buckets", "list_s3_objects")),
    ("bash -c 'aws s3 rm s3://b/k'", ("delete_s3_objects",)),
    ('sh -lc "sudo docker exec web rm -rf /data"', ("exec_in_container",)),
    ("eval aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("timeout 30 aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("nohup docker restart web &", ("restart_container",)),
    ("env -i PATH=/usr/bin aws s3 rm s3://b/k", ("delete_s3_objects",)),
    ("cat keys | xargs -n 1 aws s3 rm", ("delete_s3_objects",)),
    ("uv run aws s3 ls", ("list_s3_buckets", "list_s3_objects")),
    ("python -m awscli s3 rm s3://b/k", ("delete_s3_objects",)),
    # the SDKs and the Docker API
    ("python3 -c \"import boto3; boto3.client('s3').delete_object(Bucket='b', Key='k')\"", ()),
    ("python -c \"from docker import from_env; from_env().containers.get('web').remove()\"", ()),
    ("python3 - <<'EOF'\nimport boto3\nboto3.resource('s3').Bucket('b').objects.all().delete()\nEOF", ()),
    ("node -e \"require('@aws-sdk/client-s3')\"", ()),
    ("curl --unix-socket /var/run/docker.sock -X DELETE http://x/containers/web", ()),
]

LET_THROUGH = [
    "ls -la",
    "git commit -m 'aws s3 rm is dangerous; use docker rm never'",
    "echo aws docker",
    "which aws docker",
    "command -v aws",
    "aws --version",
    "docker --version",
    "docker version",
    "aws help",
    "grep -rn 'import boto3' src/",
    "pip install boto3 docker",
    "cat ~/.aws/config",
    "ls -l /var/run/docker.sock",
    "echo '$(aws s3 ls)'",
    "awk '{print $1}' file",
    "dockerd --help",
    "npm test  # then aws s3 rm",
    "python3 -m pytest -q",
    "python -c 'print(1)'",
    "interlock plans",
]


@pytest.mark.parametrize(("command", "tools"), BLOCKED)
def test_a_claude_code_bash_call_to_aws_or_docker_is_blocked_naming_the_tool_to_use(
    command: str, tools: tuple[str, ...]
) -> None:
    code, message = run_hook(claude(command))
    assert code == 2, command
    assert message.startswith("interlock guard: blocked `")
    if tools:
        assert all(t in message for t in tools), message
    else:
        assert "use interlock's MCP tools (list them with tools/list)" in message
    assert "not a security boundary" in message


@pytest.mark.parametrize("command", LET_THROUGH)
def test_other_commands_are_let_through_silently(command: str) -> None:
    assert run_hook(claude(command)) == (0, "")


def test_every_tool_the_guard_names_is_a_registered_tool() -> None:
    registered = {s.name for s in ALL_SPECS}
    named = {t for tools in guard._AWS_TOOLS.values() for t in tools}
    named |= {t for tools in guard._DOCKER_TOOLS.values() for t in tools}
    named |= {"put_s3_object", "copy_s3_object", "get_s3_object"}  # aws s3 cp, by direction
    assert named <= registered, named - registered


def test_gemini_and_argv_shaped_payloads_are_read_too() -> None:
    gemini = {
        "hook_event_name": "BeforeTool",
        "tool_name": "run_shell_command",
        "tool_input": {"command": "docker rm web"},
    }
    assert run_hook(json.dumps(gemini))[0] == 2
    assert run_hook(json.dumps({"command": "aws s3 rm s3://b/k"}))[0] == 2
    argv = {"tool_input": {"command": ["bash", "-lc", "aws s3 rm s3://b/k"]}}
    assert run_hook(json.dumps(argv))[0] == 2
    assert run_hook(json.dumps({"command": ["git", "status"]})) == (0, "")


@pytest.mark.parametrize(
    "stdin", ["", "not json", "{", json.dumps({"tool_name": "Bash", "tool_input": {}}), json.dumps([1])]
)
def test_unreadable_input_is_let_through_with_a_warning(stdin: str) -> None:
    code, message = run_hook(stdin)
    assert code == 0
    assert message.startswith("interlock guard: warning:") and "letting" in message


def test_a_call_of_another_tool_is_let_through_without_a_word() -> None:
    payload = {"tool_name": "Read", "tool_input": {"file_path": "/etc/hosts"}}
    assert run_hook(json.dumps(payload)) == (0, "")


def test_an_unclosed_quote_is_still_looked_at() -> None:
    assert check("aws s3 rm s3://b/k 'unclosed") is not None


def test_the_guard_command_blocks_with_exit_2_and_the_reason_on_stderr() -> None:
    def hook(stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interlock.server.cli", "guard", "--client", "claude-code"],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )

    blocked = hook(claude("sudo docker exec web rm -rf /data"))
    assert blocked.returncode == 2 and blocked.stdout == ""
    assert "exec_in_container" in blocked.stderr and "accident guard" in blocked.stderr
    allowed = hook(claude("git status"))
    assert (allowed.returncode, allowed.stdout, allowed.stderr) == (0, "", "")
    garbled = hook("{not json")
    assert garbled.returncode == 0 and "warning" in garbled.stderr


def test_the_console_script_runs_the_guard_without_loading_the_rest_of_interlock() -> None:
    import subprocess
    import sys

    code = (
        "import sys, runpy; sys.argv = ['interlock', 'guard', '--client', 'claude-code']; "
        "import interlock.server.entry as e; rc = e.main(); "
        "assert 'server.pipeline' not in sys.modules and 'rich' not in sys.modules, sorted(sys.modules); "
        "sys.exit(rc)"
    )
    payload = '{"tool_name": "Bash", "tool_input": {"command": "aws s3 rm s3://logs/a"}}'
    done = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "delete_s3_objects" in done.stderr
