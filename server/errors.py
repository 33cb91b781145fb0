"""interlock's error tree. A leaf module: it imports nothing of ours.

InterlockError                 message + hint (what failed, what to do next)
├── ConfigError                the config file is missing, unreadable or invalid
├── UsageError                 bad input from a human or an agent (exit code 2 on the CLI)
├── NotFound                   no such plan / target / tool
├── ScopeDenied                a scope rule refused the call (names the rule)
├── Frozen                     the kill switch is on
├── PlanRefused                the plan cannot be made (too large, rehearsal failed, ...)
├── NotApproved                apply without enough approvals bound to the plan hash
├── PlanStateError             wrong status for the step (rejected, expired, already applied)
├── PlanTampered               the stored plan no longer matches its hash
├── PlanStale                  production changed between plan and apply
├── PlanDiverged               production after apply differs from the rehearsal
├── SandboxUnavailable         the sandbox could not be started, reset or seeded
├── BackendError               the target (AWS, Docker) failed or refused a call
└── StoreError                 the SQLite store failed
"""

from __future__ import annotations


class InterlockError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def sentence(self) -> str:
        msg = self.message.rstrip(".") + "."
        if self.hint:
            msg += " " + self.hint[0].upper() + self.hint[1:].rstrip(".") + "."
        return msg


class ConfigError(InterlockError):
    exit_code = 2


class UsageError(InterlockError):
    exit_code = 2


class NotFound(InterlockError):
    pass


class ScopeDenied(InterlockError):
    pass


class Frozen(InterlockError):
    pass


class PlanRefused(InterlockError):
    pass


class NotApproved(InterlockError):
    pass


class PlanStateError(InterlockError):
    pass


class PlanTampered(InterlockError):
    pass


class PlanStale(InterlockError):
    pass


class PlanDiverged(InterlockError):
    pass


class SandboxUnavailable(InterlockError):
    pass


class BackendError(InterlockError):
    pass


class StoreError(InterlockError):
    pass
