"""interlock's error tree. A leaf module: it imports nothing of ours.

Grouped, so callers catch by category (the way httpx draws its exceptions):

InterlockError                 message + hint (what failed, what to do next)
├── Refused                    policy or the kill switch said no; nothing was planned or applied
│   ├── ScopeDenied            a scope rule refused the call (names the rule)
│   ├── Frozen                 the kill switch is on
│   └── PlanRefused            the plan cannot be made (too large, the rehearsal failed, ...)
├── PlanStateError             the plan is not in a state for this step
│   ├── NotApproved            apply without enough approvals bound to the plan hash
│   ├── PlanTampered           the stored plan disagrees with its hash or the audit chain
│   ├── PlanStale              production changed between plan and apply
│   └── PlanDiverged           production after apply differs from the rehearsal
├── BackendError               the target (AWS, Docker) failed or refused a call
│   └── SandboxUnavailable     the sandbox could not be started, reset, seeded or run
├── StoreError                 the store failed
├── ConfigError                the config file is missing, unreadable or invalid (exit 2)
└── UsageError                 bad input from a human or an agent (exit 2)
    └── NotFound               no such plan / target / tool (exit 1)

Sandboxes have their own tree (``interlock.sandbox.base.SandboxError``); the engine turns it
into ``PlanRefused`` or ``SandboxUnavailable``.
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


class Refused(InterlockError):
    pass


class ScopeDenied(Refused):
    pass


class Frozen(Refused):
    pass


class PlanRefused(Refused):
    pass


class PlanStateError(InterlockError):
    pass


class NotApproved(PlanStateError):
    pass


class PlanTampered(PlanStateError):
    pass


class PlanStale(PlanStateError):
    pass


class PlanDiverged(PlanStateError):
    pass


class BackendError(InterlockError):
    pass


class SandboxUnavailable(BackendError):
    pass


class StoreError(InterlockError):
    pass


class ConfigError(InterlockError):
    exit_code = 2


class UsageError(InterlockError):
    exit_code = 2


class NotFound(UsageError):
    exit_code = 1
