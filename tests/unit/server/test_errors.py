"""The error tree (server/errors.py): callers catch by category, and exit codes follow it."""

from __future__ import annotations

import pytest

from interlock.server import errors as e


@pytest.mark.parametrize(
    ("cls", "category"),
    [
        (e.ScopeDenied, e.Refused),
        (e.Frozen, e.Refused),
        (e.PlanRefused, e.Refused),
        (e.NotApproved, e.PlanStateError),
        (e.PlanTampered, e.PlanStateError),
        (e.PlanStale, e.PlanStateError),
        (e.PlanDiverged, e.PlanStateError),
        (e.SandboxUnavailable, e.BackendError),
        (e.NotFound, e.UsageError),
    ],
)
def test_each_error_belongs_to_its_category(
    cls: type[e.InterlockError], category: type[e.InterlockError]
) -> None:
    assert issubclass(cls, category) and issubclass(category, e.InterlockError)


def test_usage_and_config_errors_exit_2_and_a_missing_plan_exits_1() -> None:
    assert e.UsageError("x").exit_code == e.ConfigError("x").exit_code == 2
    assert e.NotFound("x").exit_code == 1 and e.PlanRefused("x").exit_code == 1


def test_the_tree_in_the_docstring_names_every_error() -> None:
    classes = [v for v in vars(e).values() if isinstance(v, type) and issubclass(v, e.InterlockError)]
    assert e.__doc__ is not None
    for cls in classes:
        assert cls.__name__ in e.__doc__, cls.__name__


def test_a_sentence_ends_with_the_hint() -> None:
    assert e.PlanStale("plan 7 is stale", "plan again").sentence() == "plan 7 is stale. Plan again."
