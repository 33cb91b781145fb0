"""The IAM toolset's pure parts: argument rules, addresses, policy-document normalisation and
statement diffs, the risk rules, the approval-screen summaries and replace detection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from interlock.sandbox.aws.iam import _replaced
from interlock.sandbox.diff import Action, Change
from interlock.tools import iam
from interlock.tools.iam import args, documents
from interlock.tools.spec import Footprint

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(principal: Any) -> dict[str, Any]:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


# ---------------------------------------------------------------- normalisation and diffs


def test_a_string_and_a_one_element_list_normalise_alike() -> None:
    a = documents.normalize(doc(allow("s3:GetObject", "arn:aws:s3:::b/*")))
    b = documents.normalize(doc(allow(["s3:GetObject"], ["arn:aws:s3:::b/*"])))
    assert a == b


def test_statement_order_action_order_and_whitespace_do_not_matter() -> None:
    one = doc(allow(["s3:PutObject", "s3:GetObject"], "arn:aws:s3:::b/*"), allow("sqs:SendMessage", "*"))
    two = json.dumps(
        {
            "Statement": [
                allow("sqs:SendMessage", ["*"]),
                allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::b/*"),
            ]
        },
        indent=3,
    )
    assert documents.normalize(one) == documents.normalize(two)


def test_principal_and_condition_values_normalise_to_sorted_lists() -> None:
    a = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "x"}},
    }
    b = {
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::111111111111:root"]},
        "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"sts:ExternalId": ["x"]}},
    }
    assert documents.normalize(doc(a)) == documents.normalize(doc(b))


def test_a_changed_sid_or_effect_is_a_change() -> None:
    base = documents.normalize(doc(allow("s3:GetObject")))
    assert documents.normalize(doc(allow("s3:GetObject", Sid="Read"))) != base
    assert documents.normalize(doc({**allow("s3:GetObject"), "Effect": "Deny"})) != base


def test_the_statement_diff_names_added_and_removed_statements() -> None:
    before = documents.normalize(doc(allow("s3:GetObject", "arn:aws:s3:::b/*"), allow("sqs:SendMessage")))
    after = documents.normalize(doc(allow("sqs:SendMessage"), allow("iam:PassRole")))
    added, removed = documents.statement_diff(before, after)
    assert added == [{"Action": ["iam:PassRole"], "Effect": "Allow", "Resource": ["*"]}]
    assert removed == [{"Action": ["s3:GetObject"], "Effect": "Allow", "Resource": ["arn:aws:s3:::b/*"]}]
    assert documents.statement_diff(before, before) == ([], [])
    assert documents.statement_diff(None, before)[0] == documents.statements(before)


def test_a_statement_reads_as_one_line() -> None:
    st = documents.normalize_statement(
        {
            **allow(["s3:PutObject", "s3:GetObject"], "arn:aws:s3:::b/*"),
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    )
    assert documents.describe_statement(st) == (
        'Allow s3:GetObject, s3:PutObject on arn:aws:s3:::b/* if {"Bool":{"aws:SecureTransport":["true"]}}'
    )


# ---------------------------------------------------------------- risk rules


@pytest.mark.parametrize(
    "statement",
    [
        allow("*"),
        allow("*:*", "arn:aws:s3:::b"),
        allow("iam:*", f"arn:aws:iam::{ACCOUNT}:role/*"),
        allow("iam:PassRole"),
        allow("iam:Pass*"),
        allow("sts:AssumeRole"),
        allow("sts:*"),
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "NotResource": "arn:aws:iam::1:role/x"},
    ],
)
def test_escalating_statements_are_recognised(statement: dict[str, Any]) -> None:
    assert documents.escalation(documents.normalize_statement(statement))


@pytest.mark.parametrize(
    "statement",
    [
        allow("s3:GetObject"),
        allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/runner"),
        allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/ci"),
        allow("iam:Get*"),
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ],
)
def test_narrow_statements_are_not_escalation(statement: dict[str, Any]) -> None:
    assert documents.escalation(documents.normalize_statement(statement)) is None


def test_administrator_level_managed_policies_are_known_by_arn() -> None:
    assert documents.is_admin_policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
    assert documents.is_admin_policy_arn("arn:aws:iam::aws:policy/IAMFullAccess")
    assert not documents.is_admin_policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
    # a customer policy that borrows the name is judged by its document, not its name
    assert not documents.is_admin_policy_arn(f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess")


def test_trust_reads_anyone_and_the_accounts_named() -> None:
    assert documents.trusted(documents.normalize(trust("*"))) == (True, set())
    assert documents.trusted(documents.normalize(trust({"AWS": "*"}))) == (True, set())
    got = documents.trusted(
        documents.normalize(trust({"AWS": ["111111111111", "arn:aws:iam::222222222222:role/ci"]}))
    )
    assert got == (False, {"111111111111", "222222222222"})
    assert documents.trusted(documents.normalize(trust({"Service": "ec2.amazonaws.com"}))) == (False, set())


def _role(trust_policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "app",
        "path": "/",
        "arn": ROLE,
        "trust_policy": documents.normalize(trust_policy),
        "tags": {},
    }


def _inline(document: dict[str, Any]) -> dict[str, Any]:
    return {"role": "app", "name": "p", "document": documents.normalize(document)}


def flags(changes: list[Change]) -> set[str]:
    return {flag for flag, _ in iam.risks(changes) if flag}


def test_an_added_wildcard_statement_is_privilege_escalation_and_a_kept_one_is_not() -> None:
    address = f"{ROLE}#inline/p"
    wide = _inline(doc(allow("*")))
    added = Change(address, Action.UPDATE, _inline(doc(allow("s3:GetObject"))), wide, kind="iam.role-policy")
    kept = Change(
        address, Action.UPDATE, wide, _inline(doc(allow("*"), allow("s3:GetObject"))), kind="iam.role-policy"
    )
    assert flags([added]) == {"privilege-escalation"}
    assert flags([kept]) == set()


def test_attaching_administrator_access_is_privilege_escalation() -> None:
    arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    after = {"role": "app", "policy_arn": arn, "policy_name": "AdministratorAccess", "document": None}
    change = Change(f"{ROLE}#attached/{arn}", Action.CREATE, None, after, kind="iam.attachment")
    assert flags([change]) == {"privilege-escalation"}
    ro = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    harmless = Change(
        f"{ROLE}#attached/{ro}", Action.CREATE, None, {**after, "policy_arn": ro}, kind="iam.attachment"
    )
    assert flags([harmless]) == set()


def test_a_trust_policy_is_not_read_for_escalation_but_for_widening() -> None:
    before = _role(trust({"Service": "ec2.amazonaws.com"}))
    # sts:AssumeRole on a trust policy statement is how every trust policy reads: not escalation
    assert (
        flags(
            [
                Change(
                    ROLE,
                    Action.UPDATE,
                    before,
                    _role(trust({"Service": "ecs.amazonaws.com"})),
                    kind="iam.role",
                )
            ]
        )
        == set()
    )
    assert flags([Change(ROLE, Action.UPDATE, before, _role(trust("*")), kind="iam.role")]) == {
        "trust-widened"
    }
    assert flags(
        [Change(ROLE, Action.UPDATE, before, _role(trust({"AWS": "999999999999"})), kind="iam.role")]
    ) == {"trust-widened"}


def test_a_new_role_trusting_its_own_account_is_not_widened_but_another_account_is() -> None:
    own = Change(
        ROLE, Action.CREATE, None, _role(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})), kind="iam.role"
    )
    other = Change(
        ROLE, Action.CREATE, None, _role(trust({"AWS": "arn:aws:iam::999999999999:root"})), kind="iam.role"
    )
    assert flags([own]) == set()
    assert flags([other]) == {"trust-widened"}


def test_an_account_already_trusted_is_not_widened() -> None:
    before = _role(trust({"AWS": "999999999999"}))
    after = _role(
        doc(
            {"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
        )
    )
    assert flags([Change(ROLE, Action.UPDATE, before, after, kind="iam.role")]) == set()


def test_every_changed_document_gets_a_note_naming_its_statements() -> None:
    change = Change(
        f"{ROLE}#inline/p",
        Action.UPDATE,
        _inline(doc(allow("s3:GetObject"))),
        _inline(doc(allow("s3:PutObject"))),
        kind="iam.role-policy",
    )
    ((flag, note),) = iam.risks([change])
    assert flag == ""
    assert "+ Allow s3:PutObject on *" in note and "- Allow s3:GetObject on *" in note


# ---------------------------------------------------------------- addresses


def test_addresses_split_into_kind_parent_and_child() -> None:
    policy = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    role = f"arn:aws:iam::{ACCOUNT}:role/service/runner"
    assert iam.split(role) == ("iam.role", role, "")
    assert iam.split(iam.inline_address(role, "read")) == ("iam.role-policy", role, "read")
    assert iam.split(iam.attachment_address(role, policy)) == ("iam.attachment", role, policy)
    assert iam.split(f"arn:aws:iam::{ACCOUNT}:policy/team/p") == (
        "iam.policy",
        f"arn:aws:iam::{ACCOUNT}:policy/team/p",
        "",
    )
    assert iam.split_role(role) == (ACCOUNT, "/service/", "runner")


def test_a_role_delete_footprint_covers_every_policy_of_the_role_and_no_other_role() -> None:
    spec = next(s for s in iam.SPECS if s.name == "delete_iam_role")
    assert spec.footprint is not None
    fp = spec.footprint(args.DeleteRole(role=ROLE, force=True))
    assert (
        fp.covers(ROLE)
        and fp.covers(f"{ROLE}#inline/x")
        and fp.covers(f"{ROLE}#attached/arn:aws:iam::aws:policy/X")
    )
    assert not fp.covers(f"{ROLE}-other") and not fp.covers(f"{ROLE}-other#inline/x")


def test_the_confirm_word_is_the_role_name() -> None:
    assert iam.confirm_name(Footprint((f"{ROLE}#inline/p",))) == "app"
    assert iam.confirm_name(Footprint((ROLE,), (ROLE + "#",))) == "app"


def test_a_role_deleted_and_created_again_in_one_rehearsal_is_replaced() -> None:
    calls = [
        ("DeleteRole", {"RoleName": "runner"}),
        ("CreateRole", {"RoleName": "runner", "Path": "/service/"}),
    ]
    assert _replaced(calls, ACCOUNT, "us-east-1") == {f"arn:aws:iam::{ACCOUNT}:role/service/runner"}
    assert _replaced([("CreateRole", {"RoleName": "runner"})], ACCOUNT, "us-east-1") == set()


def test_summaries_name_what_a_role_trusts_and_how_many_statements_a_policy_has() -> None:
    bits, covered = iam.summarize("iam.role", _role(trust({"Service": "ec2.amazonaws.com"}))) or (
        [],
        frozenset(),
    )
    assert "trusts ec2.amazonaws.com" in bits and "trust_policy" not in covered
    bits, _ = iam.summarize("iam.role-policy", _inline(doc(allow("a:b"), allow("c:d")))) or ([], frozenset())
    assert "2 statement(s)" in bits


# ---------------------------------------------------------------- argument rules


@pytest.mark.parametrize(
    "role", ["app", "a+b=c,d.e@f_g-h", ROLE, f"arn:aws:iam::{ACCOUNT}:role/service/x/app"]
)
def test_role_names_and_arns_are_accepted(role: str) -> None:
    assert args.RoleOnly(role=role).role == role


@pytest.mark.parametrize(
    ("role", "rule"),
    [
        ("has space", "1-64 letters"),
        ("x" * 65, "1-64 letters"),
        ("arn:aws:s3:::bucket", "not a role ARN"),
        ("arn:aws:iam::12345:role/app", "not a role ARN"),
        (f"arn:aws:iam::{ACCOUNT}:role/a#b/app", "'#'"),
    ],
)
def test_bad_role_references_are_refused_with_the_rule(role: str, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        args.RoleOnly(role=role)


def test_paths_follow_iams_rule_and_may_not_hold_the_separator() -> None:
    assert args.CreateRole(role="x", path="/team/a/", trust_policy=json.dumps(trust("*"))).path == "/team/a/"
    for bad in ("team/", "/team", "/a b/", "/a#b/"):
        with pytest.raises(ValidationError):
            args.CreateRole(role="x", path=bad, trust_policy=json.dumps(trust("*")))


def test_documents_must_be_json_objects_with_statements_and_no_duplicate_keys() -> None:
    good = json.dumps(doc(allow("s3:GetObject")))
    assert args.PutRolePolicy(role="app", policy_name="p", document=good).document == good
    for bad, rule in (
        ("not json", "not a valid JSON"),
        ("[]", "Statement"),
        ('{"Version": "2012-10-17"}', "Statement"),
        ('{"Statement": [{"Effect": "Maybe"}]}', "Effect"),
        ('{"Statement": [{"Effect": "Allow", "Effect": "Deny"}]}', "appears twice"),
    ):
        with pytest.raises(ValidationError, match=rule):
            args.PutRolePolicy(role="app", policy_name="p", document=bad)


def test_documents_are_held_to_iams_size_quotas_without_whitespace() -> None:
    big = json.dumps(doc(*[allow(f"s3:Get{i:05d}", f"arn:aws:s3:::bucket-{i:05d}/*") for i in range(200)]))
    with pytest.raises(ValidationError, match="10,240"):
        args.PutRolePolicy(role="app", policy_name="p", document=big)
    with pytest.raises(ValidationError, match="6,144"):
        args.CreatePolicyVersion(policy="p", document=big)
    padded = json.dumps(doc(allow("s3:GetObject")), indent=2) + " " * 11_000
    assert args.PutRolePolicy(role="app", policy_name="p", document=padded)


def test_a_trust_policy_needs_a_principal_in_every_statement() -> None:
    with pytest.raises(ValidationError, match="Principal"):
        args.UpdateTrust(role="app", trust_policy=json.dumps(doc(allow("sts:AssumeRole"))))


def test_unknown_arguments_are_refused() -> None:
    with pytest.raises(ValidationError):
        args.RoleOnly.model_validate({"role": "app", "rol": "x"})


def test_policy_references_accept_aws_managed_arns_and_names() -> None:
    assert args.RoleAttachment(role="app", policy="arn:aws:iam::aws:policy/job-function/ViewOnlyAccess")
    assert args.RoleAttachment(role="app", policy="my-policy")
    with pytest.raises(ValidationError, match="not a managed policy ARN"):
        args.RoleAttachment(role="app", policy="arn:aws:iam::aws:role/x")


def _policy(*versions: tuple[bool, dict[str, Any]]) -> dict[str, Any]:
    docs = [{"default": d, "document": documents.normalize(x)} for d, x in versions]
    default = next(v["document"] for v in docs if v["default"])
    return {"name": "p", "path": "/", "document": default, "versions": docs, "version_ids": []}


def test_an_escalating_version_that_is_not_the_default_is_flagged_too() -> None:
    address = f"arn:aws:iam::{ACCOUNT}:policy/p"
    narrow = doc(allow("s3:GetObject"))
    before = _policy((True, narrow))
    after = _policy((True, narrow), (False, doc(allow("*"))))
    found = [
        (f, n) for f, n in iam.risks([Change(address, Action.UPDATE, before, after, kind="iam.policy")]) if f
    ]
    assert [f for f, _ in found] == ["privilege-escalation"]
    assert "not the default" in found[0][1]
    harmless = _policy((True, narrow), (False, doc(allow("s3:PutObject"))))
    assert flags([Change(address, Action.UPDATE, before, harmless, kind="iam.policy")]) == set()


# ---------------------------------------------------------------- flags an agent might dodge


@pytest.mark.parametrize(
    "statement",
    [
        # writing any role's permissions or trust is escalation, however it is spelt
        allow("iam:Put*"),
        allow("IAM:PUTROLEPOLICY"),
        allow(["s3:GetObject", "iam:Attach*"]),
        allow("iam:CreatePolicyVersion", f"arn:aws:iam::{ACCOUNT}:policy/*"),
        allow("iam:UpdateAssumeRolePolicy"),
        allow("iam:CreateAccessKey", "arn:aws:iam::*:user/*"),
        # a wildcard covering every role is every resource for PassRole / AssumeRole
        allow("iam:PassRole", "arn:aws:iam::*:role/*"),
        allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:*"),
        allow("sts:AssumeRole", "arn:aws:iam::*:*"),
        allow("iam:PassRole", ["arn:aws:s3:::b", "arn:*"]),
    ],
)
def test_escalation_is_recognised_in_the_spellings_an_agent_might_try(statement: dict[str, Any]) -> None:
    assert documents.escalation(documents.normalize_statement(statement))


@pytest.mark.parametrize(
    "statement",
    [
        allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app-*"),
        allow("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/app-runner"),
        allow("iam:List*"),
    ],
)
def test_a_narrowly_scoped_iam_write_is_not_escalation(statement: dict[str, Any]) -> None:
    assert documents.escalation(documents.normalize_statement(statement)) is None


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::*:root"},
        {"AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::*:role/*"]},
        {"AWS": "*", "Service": "ec2.amazonaws.com"},
        {"Federated": "*"},
    ],
)
def test_a_wildcard_principal_in_any_spelling_is_anyone(principal: Any) -> None:
    before = _role(trust({"Service": "ec2.amazonaws.com"}))
    change = Change(ROLE, Action.UPDATE, before, _role(trust(principal)), kind="iam.role")
    assert flags([change]) == {"trust-widened"}


def test_an_account_named_by_an_sts_session_arn_is_a_new_trusted_account() -> None:
    before = _role(trust({"Service": "ec2.amazonaws.com"}))
    after = _role(trust({"AWS": "arn:aws:sts::999999999999:assumed-role/ops/alice"}))
    assert flags([Change(ROLE, Action.UPDATE, before, after, kind="iam.role")]) == {"trust-widened"}


def test_a_customer_policy_version_granting_iam_put_on_every_role_is_escalation() -> None:
    address = f"arn:aws:iam::{ACCOUNT}:policy/p"
    narrow = doc(allow("s3:GetObject"))
    after = _policy((False, narrow), (True, doc(allow("iam:Put*", "arn:aws:iam::*:role/*"))))
    change = Change(address, Action.UPDATE, _policy((True, narrow)), after, kind="iam.policy")
    assert flags([change]) == {"privilege-escalation"}


def test_a_document_nested_too_deeply_is_refused_as_an_argument_not_a_crash() -> None:
    deep = '{"Version": "2012-10-17", "Statement": ' + "[" * 3000 + "]" * 3000 + "}"
    with pytest.raises(ValidationError, match="nested too deeply"):
        args.PutRolePolicy.model_validate(
            {"role": "app", "policy_name": "p", "document": deep, "reason": "r"}
        )
    trust_args = {"role": "app", "trust_policy": deep, "reason": "r"}
    with pytest.raises(ValidationError, match="nested too deeply"):
        args.UpdateTrust.model_validate(trust_args)


def test_scope_rules_judge_an_iam_name_in_any_case_by_its_lower_case_form() -> None:
    from interlock.server.policy import first_match

    pattern = [f"arn:aws:iam::{ACCOUNT}:role/break-glass*"]
    assert first_match(f"arn:aws:iam::{ACCOUNT}:role/Break-Glass-2", pattern) == 0
    assert first_match(f"arn:aws:iam::{ACCOUNT}:role/BREAK-GLASS#inline/p", pattern) == 0
    assert first_match(f"arn:aws:iam::{ACCOUNT}:role/app", pattern) is None
    # the role of a policy is still what a rule on the role judges
    assert iam.judged_as(f"{ROLE}#inline/p")[0] == ROLE


# ---------------------------------------------------------------- crashes the fuzz found

TRUST_DOC = json.dumps(
    doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
)


@pytest.mark.parametrize("description", ["\x1f", "a\x00b", "\u202e", "\U0001f600"])
def test_a_role_description_outside_iams_characters_is_refused(description: str) -> None:
    # moto sent a control character back in XML no parser reads: the internal-error net.
    with pytest.raises(ValidationError, match="printable Latin-1 text"):
        args.CreateRole(role="app", trust_policy=TRUST_DOC, description=description)
    assert args.CreateRole(role="app", trust_policy=TRUST_DOC, description="Café\tapp\n(role) ü")


@pytest.mark.parametrize("tags", [{"k": "\x1f"}, {"a\x00": "v"}, {"k": "a<b"}, {"k": "\ud800"}])
def test_a_role_tag_outside_iams_characters_is_refused(tags: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="only letters, digits, spaces"):
        args.CreateRole(role="app", trust_policy=TRUST_DOC, tags=tags)
    assert args.CreateRole(role="app", trust_policy=TRUST_DOC, tags={"team": "web ü", "a:b/c": "x=y+z@_.-"})
