"""The MCP app: the tool registry, its filter, and the wiring of tools to the engine.

Registration order (fixed):
  1. every spec from every toolset module (``tools.ALL_SPECS``), names unique;
  2. the filter (``policy.exposed``) drops what the config does not expose;
  3. the survivors become MCP tools, with annotations derived from the spec;
  4. the meta tools ``get_plan``, ``list_plans``, ``plan_rollback`` and ``apply_plan``.
No tool approves, rejects, thaws or changes scopes: those are human commands.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata, func_metadata
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Icon, InputRequiredResult, TextContent, ToolAnnotations
from mcp_types import Tool as MCPTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interlock.tools import ALL_SPECS, shown_args
from interlock.tools.spec import ToolSpec

from . import __version__, policy
from .config import Config
from .engine import open_engine
from .errors import InterlockError
from .pipeline import Engine, PlanResult
from .plans import Status
from .render import AGENT_PAGE, plan_text
from .store import MAX_PLAN_ID
from .textsafety import visible

if TYPE_CHECKING:
    pass

log = logging.getLogger("interlock.server")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# A write tool's text lists at most this many entries (a change, or a group of bulk sibling changes).
WRITE_TEXT_ENTRIES = 50
MAX_CHANGES_OFFSET = 1_000_000  # far beyond any plan's changes (a rehearsal copies at most 25,000 objects)

INSTRUCTIONS = (
    "interlock gives you infrastructure tools that cannot change production on their own. Read tools "
    "(list_*, get_*) answer from production. Write tools rehearse the call in a sandbox and return a PLAN: "
    "a diff of exactly what would change. Nothing changes until a human approves that plan in a terminal. "
    "Always pass a clear `reason`; the approver reads it. After a write tool returns a plan, tell the user "
    "the plan id and call apply_plan(plan_id, wait_seconds=...) to apply it once approved."
)


@dataclass(frozen=True)
class AppContext:
    """What the MCP lifespan yields and every tool reads: the one engine of this server."""

    engine: Engine


@dataclass
class Holder:
    """The lifespan's context, where the tools (registered before the lifespan runs) find it."""

    context: AppContext | None = None
    users: int = 0  # lifespans entered: the service enters once and shares the engine with HTTP

    @property
    def engine(self) -> Engine | None:
        return self.context.engine if self.context else None

    def get(self) -> Engine:
        if self.context is None:
            raise ToolError("interlock is still starting. Call the tool again in a moment.")
        return self.context.engine


def to_tool_error(exc: InterlockError) -> ToolError:
    return ToolError(exc.sentence())


def internal_error(tool: str, exc: Exception, *, applies: bool = False) -> ToolError:
    """The safety net's message: a crash is interlock's defect, never the agent's to guess at.
    The traceback goes to the log; only the exception's type reaches the agent."""
    log.error("interlock hit an internal error in %s", tool, exc_info=exc)
    if applies:
        what_now = (
            "If the plan had started applying, production may have changed: check the plan with "
            "get_plan and ask a human to run `interlock show` on it before calling apply_plan again."
        )
    else:
        what_now = "Nothing was applied to production."
    return ToolError(
        f"interlock hit an internal error in {tool} ({type(exc).__name__}). {what_now} "
        "This is a defect in interlock, not in your arguments: please report it with the server's log, "
        "which holds the traceback."
    )


@contextmanager
def boundary(tool: str, *, applies: bool = False) -> Iterator[None]:
    """The MCP boundary of one tool call: interlock's own errors become the ToolError sentence they
    carry; anything else is a defect and becomes ``internal_error`` (a net, not the fix: each crash
    class is fixed where it arises)."""
    try:
        yield
    except ToolError:
        raise
    except InterlockError as exc:
        raise to_tool_error(exc) from exc
    except Exception as exc:
        raise internal_error(tool, exc, applies=applies) from exc


MAX_PROBLEMS = 8  # validation problems spelled out in one message; the rest are counted
_SUBJECT = re.compile(r"^(Input|String|List|Dictionary|Value|Object|Tuple|Set) should ")


def _json_type(value: Any) -> str:
    """What an argument's value is, in JSON's words (the agent wrote JSON, not Python)."""
    kinds: list[tuple[type, str]] = [(bool, "a boolean"), (int, "an integer"), (float, "a number")]
    kinds += [(str, "a string"), (list, "an array"), (dict, "an object"), (type(None), "null")]
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _problem(loc: str, err: Any, valid: list[str] | None) -> str:
    """One validation problem as one sentence that names the argument, the rule and the fix."""
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        names = ", ".join(valid) if valid else "none"
        return f"{loc} is not an argument of this tool (misspelled?); its arguments are: {names}."
    if kind == "missing":
        return f"{loc} is required: pass it."
    if kind == "string_unicode":
        return (
            f"{loc} is not valid text: it holds a lone surrogate (U+D800-U+DFFF), which has no UTF-8 "
            "encoding; send valid Unicode text."
        )
    if _SUBJECT.match(msg):
        sentence = _SUBJECT.sub(lambda _: f"{loc} should ", msg, count=1)
    elif msg.startswith(("is ", "holds ", "has ", "must ")):  # a rule's own sentence, subject left out
        sentence = f"{loc} {msg}"
    else:
        sentence = f"{loc}: {msg}"
    got = err.get("input")
    if kind.endswith(("_type", "_parsing")) and "input" in err:
        sentence += f" (got {_json_type(got)})"
    elif isinstance(got, int | float) and not isinstance(got, bool):
        sentence += f" (got {str(got)[:40]})"
    return sentence.rstrip(".") + "."


def _validation_message(tool: str, exc: ValidationError, valid: list[str] | None = None) -> str:
    """A ValidationError as one sentence per problem (never pydantic's raw text), then what next."""
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = visible(".".join(str(p) for p in err["loc"]))[:80] or "arguments"
        sentence = _problem(loc, err, valid)
        if sentence not in problems:
            problems.append(sentence)
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"({len(problems) - MAX_PROBLEMS} more problems not shown.)")
    noun = "argument is" if len(problems) == 1 else "arguments are"
    return (
        f"invalid arguments for {tool}, so nothing was called: {len(problems)} {noun} wrong. "
        + " ".join(shown)
        + f" Fix them and call {tool} again."
    )


@dataclass(frozen=True)
class ToolArguments:
    """What a tool accepts, checked before the SDK sees the call: exactly its declared arguments
    (an unknown or misspelled one is an error, never dropped), each against its own rules."""

    tool: str
    meta: FuncMetadata  # the SDK's own reading of the function (JSON-string pre-parsing included)
    model: type[BaseModel]  # its argument model, refusing unknown arguments

    @classmethod
    def of(cls, tool: str, fn: Callable[..., Any], meta: FuncMetadata | None = None) -> ToolArguments:
        """``meta``: the SDK's own reading, when it already made one (``add_tool`` did)."""
        if meta is None:
            context = find_context_parameter(fn)
            meta = func_metadata(fn, skip_names=[context] if context else [], structured_output=False)
        # Built on the tool's first call, not at start: a server offers dozens of tools, and each
        # model costs about a millisecond to build (the schema agents see is the SDK's, built already).
        config = ConfigDict(extra="forbid", defer_build=True)
        model = type(f"{tool}_arguments", (meta.arg_model,), {"model_config": config})
        return cls(tool, meta, model)

    @property
    def names(self) -> list[str]:
        return [f.alias or n for n, f in self.model.model_fields.items()]

    def check(self, arguments: dict[str, Any]) -> None:
        where = _lone_surrogate(arguments)
        if where is not None:
            raise ToolError(
                f"invalid arguments for {self.tool}, so nothing was called: {where} holds a lone surrogate "
                "(a code point U+D800-U+DFFF on its own), which is not text: no AWS API, Docker or the plan "
                f"store can carry it. Remove it and call {self.tool} again."
            )
        try:
            self.model.model_validate(self.meta.pre_parse_json(arguments))
        except ValidationError as exc:
            raise ToolError(_validation_message(self.tool, exc, self.names)) from exc


MAX_WALK = 100_000  # values looked at for lone surrogates; a larger call is refused by its models anyway


def _lone_surrogate(arguments: Any) -> str | None:
    """Where a string (a key or a value, at any depth) of the call holds a lone surrogate, as an
    ASCII-safe path (``tags['\\ud800']`` is written with the escape), or None. Iterative: a deeply
    nested argument cannot exhaust the stack here."""
    todo: list[tuple[str, Any]] = [("", arguments)]
    for _ in range(MAX_WALK):
        if not todo:
            return None
        path, value = todo.pop()
        if isinstance(value, str):
            if any("\ud800" <= ch <= "\udfff" for ch in value):
                return path.encode("ascii", "backslashreplace").decode()
        elif isinstance(value, dict):
            for k, v in value.items():
                key = f"{path}[{k!r}]" if path else str(k)
                if isinstance(k, str) and any("\ud800" <= ch <= "\udfff" for ch in k):
                    return key.encode("ascii", "backslashreplace").decode()
                todo.append((key, v))
        elif isinstance(value, list | tuple):
            todo.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
    return None


class InterlockMCP(MCPServer):
    """An MCPServer whose tools take exactly their declared arguments: tools/list says so
    (``additionalProperties: false``), and a call is checked before it runs, so an unknown argument
    is named in a ToolError and every other problem reads as one sentence, not pydantic's text.
    A crash that escapes a tool's own boundary is still turned into ``internal_error``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arguments: dict[str, ToolArguments] = {}

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        super().add_tool(fn, name, title, description, annotations, icons, meta, structured_output)
        tool = name or fn.__name__
        registered = self._tool_manager.get_tool(tool)
        self._arguments[tool] = ToolArguments.of(tool, fn, registered.fn_metadata if registered else None)

    async def list_tools(self) -> list[MCPTool]:
        return [
            t.model_copy(update={"input_schema": {**t.input_schema, "additionalProperties": False}})
            if t.name in self._arguments
            else t
            for t in await super().list_tools()
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        applies = name == "apply_plan"
        try:
            checked = self._arguments.get(name)
            if checked is not None:
                checked.check(arguments)
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:  # a crash outside the tool's own boundary
            cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            raise internal_error(name, cause, applies=applies) from exc
        except (ToolError, MCPError):
            raise
        except Exception as exc:  # a crash in checking the arguments themselves
            raise internal_error(name, exc, applies=applies) from exc


def _params_of(spec: ToolSpec) -> list[inspect.Parameter]:
    params = []
    for fname, finfo in spec.args.model_fields.items():
        meta = [*finfo.metadata, Field(description=finfo.description)]
        ann: Any = Annotated.__class_getitem__((finfo.annotation, *meta))  # type: ignore[attr-defined]
        if finfo.is_required():
            default: Any = inspect.Parameter.empty
        elif finfo.default_factory is not None:
            default = finfo.default_factory()  # type: ignore[call-arg]
        else:
            default = finfo.default
        params.append(
            inspect.Parameter(fname, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        )
    return params


COMMON_WRITE = [
    inspect.Parameter(
        "reason",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[
            str,
            Field(
                description="Why this change is needed, in a sentence or two. Stored with the plan and shown to the human approver.",
                min_length=1,
                max_length=2000,
            ),
        ],
    ),
]
COMMON_TARGET = inspect.Parameter(
    "target",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        str | None, Field(description="The configured target to use; omit for the default target.")
    ],
)


def _annotations(spec: ToolSpec) -> ToolAnnotations:
    if spec.read_only:
        return ToolAnnotations(
            title=spec.title,
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        )
    return ToolAnnotations(
        title=spec.title,
        read_only_hint=False,
        destructive_hint=spec.destructive,
        idempotent_hint=spec.idempotent,
        open_world_hint=True,
    )


def make_tool(holder: Holder, spec: ToolSpec, playground: bool) -> Any:
    async def tool(**kwargs: Any) -> CallToolResult:
        with boundary(spec.name):
            engine = holder.get()
            reason = kwargs.pop("reason", "")
            target = kwargs.pop("target", None)
            try:
                args = spec.args.model_validate(kwargs)
            except ValidationError as exc:
                names = [*spec.args.model_fields, *(["reason"] if not spec.read_only else []), "target"]
                raise ToolError(_validation_message(spec.name, exc, names)) from exc
            if spec.read_only:
                result = await engine.read(spec, args, target)
                text = _read_text(spec, result)
                return CallToolResult(
                    content=[TextContent(type="text", text=text)], structured_content=result
                )
            plan = await engine.plan(spec, args, reason, target)
            # What decides first, then a small page: a 10,000-change plan stays a few KB (get_plan pages).
            body = PlanResult(plan, 0, AGENT_PAGE, compact=True).to_dict()
            text = plan_text(plan, WRITE_TEXT_ENTRIES, False, 0, body["next_step"])
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body)

    params = _params_of(spec)
    if not spec.read_only:
        params += COMMON_WRITE
    params += [COMMON_TARGET]
    tool.__signature__ = inspect.Signature(params, return_annotation=CallToolResult)  # type: ignore[attr-defined]
    tool.__name__ = spec.name
    desc = spec.description
    if playground:
        desc = "[PLAYGROUND: a local emulator, not real AWS] " + desc
    return tool, desc


def _read_text(spec: ToolSpec, result: dict[str, Any]) -> str:
    prefix = "[PLAYGROUND] " if result.get("playground") else ""
    return prefix + json.dumps(result, indent=1, default=str)


def register_meta_tools(server: MCPServer, holder: Holder) -> None:
    # open_world_hint: get_plan and list_plans read interlock's own store (a closed world);
    # apply_plan reaches the target (production).
    @server.tool(
        name="get_plan",
        title="Get a plan",
        annotations=ToolAnnotations(
            title="Get a plan",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def get_plan(
        plan_id: Annotated[
            int, Field(description="The plan id a write tool returned.", ge=1, le=MAX_PLAN_ID)
        ],
        changes_offset: Annotated[
            int,
            Field(
                description="Return changes starting at this index (for plans with many changes; 0-1000000).",
                ge=0,
                le=MAX_CHANGES_OFFSET,
            ),
        ] = 0,
        changes_limit: Annotated[
            int, Field(description="Return at most this many changes (1-1000).", ge=1, le=1000)
        ] = 200,
    ) -> CallToolResult:
        """Show a plan: its status, risk flags, approvals needed, totals by kind and action, and one page of changes with their full before and after states (page through the rest with changes_offset)."""
        with boundary("get_plan"):
            engine = holder.get()
            plan = await engine.expire_if_due(await engine.store.get_plan(plan_id), "interlock")
            extra = {
                "reason": plan.reason,
                "tool": plan.tool,
                "args": shown_args(plan.tool, plan.args),
                "outcome": plan.outcome,
            }
            body = PlanResult(plan, changes_offset, changes_limit, extra=extra).to_dict()
            # The text shows the same page, every change of it in full (positional: one call shape).
            text = plan_text(plan, changes_limit, True, changes_offset, body["next_step"])
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body)

    @server.tool(
        name="list_plans",
        title="List plans",
        annotations=ToolAnnotations(
            title="List plans",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def list_plans(
        status: Annotated[
            str | None,
            Field(
                description="Only plans with this status: pending, approved, rejected, expired, applying, applied, failed, stale, diverged."
            ),
        ] = None,
        limit: Annotated[int, Field(description="At most this many plans, newest first.", ge=1, le=500)] = 20,
    ) -> CallToolResult:
        """List recent plans, newest first."""
        with boundary("list_plans"):
            engine = holder.get()
            if status is not None and status not in {s.value for s in Status}:
                raise ToolError(
                    f"unknown status '{visible(status[:40])}'. Use one of: {', '.join(s.value for s in Status)}."
                )
            plans = await engine.store.list_plans([status] if status else None, limit)
            rows = [
                {
                    "plan_id": p.id,
                    "status": p.status.value,
                    "tool": p.tool,
                    "target": p.target,
                    "summary": p.summary,
                    "reason": p.reason,
                    "created_at": p.created_at,
                }
                for p in plans
            ]
            text = (
                "\n".join(
                    f"{r['plan_id']:>5}  {r['status']:<9} {r['tool']:<24} {r['target']}  {r['summary']}"
                    for r in rows
                )
                or "No plans."
            )
            return CallToolResult(
                content=[TextContent(type="text", text=text)], structured_content={"plans": rows}
            )

    @server.tool(
        name="plan_rollback",
        title="Plan the rollback of an applied plan",
        annotations=ToolAnnotations(
            title="Plan the rollback of an applied plan",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def plan_rollback(
        plan_id: Annotated[
            int, Field(description="The id of the applied plan to undo.", ge=1, le=MAX_PLAN_ID)
        ],
        reason: Annotated[
            str,
            Field(
                description="Why the change is undone, in a sentence or two. Shown to the human approver.",
                min_length=1,
                max_length=2000,
            ),
        ],
    ) -> CallToolResult:
        """Plan putting back what an applied plan destroyed or overwrote, from the pre-images interlock kept when it was applied. The rollback is rehearsed against production as it is now and returned as a new plan that a human must approve; nothing changes until it is approved and applied (apply_plan). If production changed since, the plan is flagged overwrites-later-change."""
        with boundary("plan_rollback"):
            engine = holder.get()
            plan = await engine.plan_rollback(plan_id, reason)
            body = PlanResult(plan, 0, AGENT_PAGE, compact=True).to_dict()
            text = plan_text(plan, WRITE_TEXT_ENTRIES, False, 0, body["next_step"])
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body)

    @server.tool(
        name="apply_plan",
        title="Apply an approved plan",
        description=(
            "Apply a plan that a human approved: exactly the stored change, after checking that production "
            "still matches what was planned. Returns the outcome: applied, diverged, rejected, expired or "
            "still pending."
        ),
        annotations=ToolAnnotations(
            title="Apply an approved plan",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def apply_plan(
        plan_id: Annotated[
            int, Field(description="The plan id a write tool returned.", ge=1, le=MAX_PLAN_ID)
        ],
        ctx: Context,
        wait_seconds: Annotated[
            float,
            Field(
                description="Wait up to this many seconds (max 600) for a human to decide, with progress notifications.",
                ge=0,
                le=600,
                allow_inf_nan=False,
            ),
        ] = 0,
    ) -> CallToolResult:
        """Apply a plan that a human approved: exactly the stored change, after checking that production
        still matches what was planned. Returns the outcome: applied, diverged, rejected, expired or still
        pending."""

        async def progress(waited: float, message: str) -> None:
            with suppress(Exception):
                await ctx.report_progress(waited, wait_seconds, message)

        with boundary("apply_plan", applies=True):
            engine = holder.get()
            plan = await engine.wait_for_decision(plan_id, wait_seconds, progress)
            if plan.status is Status.PENDING:
                await engine.check_frozen()
                approvers = await engine.counted_approvers(plan)
                body = {
                    "plan_id": plan.id,
                    "outcome": "still pending",
                    "status": plan.status.value,
                    "approvals": len(approvers),
                    "required_approvals": plan.required_approvals,
                    "next_step": f"A human must approve it: `interlock approve {plan.id}`. Call apply_plan again with wait_seconds to wait.",
                }
                text = f"Plan {plan.id} is still pending ({len(approvers)} of {plan.required_approvals} approvals). {body['next_step']}"
                return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body)
            if plan.status in (Status.REJECTED, Status.EXPIRED):
                body = {
                    "plan_id": plan.id,
                    "outcome": plan.status.value,
                    "status": plan.status.value,
                    "next_step": f"Nothing was applied. Make a new plan with {plan.tool} only if the change is still needed.",
                }
                return CallToolResult(
                    content=[
                        TextContent(
                            type="text", text=f"Plan {plan.id} was {plan.status.value}. {body['next_step']}"
                        )
                    ],
                    structured_content=body,
                )
            plan = await engine.apply(plan_id, engine.current_actor)
            outcome = plan.status.value
            body = {"plan_id": plan.id, "outcome": outcome, "status": outcome, "details": plan.outcome}
            if plan.status is Status.DIVERGED:
                text = (
                    f"WARNING: plan {plan.id} was applied but production does not match the rehearsal "
                    f"({', '.join(plan.outcome.get('mismatched', [])[:5])}). A human should inspect it: `interlock show {plan.id}`."
                )
            else:
                text = f"Plan {plan.id} applied and verified: production now matches the rehearsal."
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=body)


def build_server(
    config: Config,
    *,
    extra_specs: tuple[ToolSpec, ...] = (),
    on_engine: Callable[[Engine], Awaitable[None]] | None = None,
    log_level: LogLevel = "WARNING",
    sandboxes: int | None = None,
) -> MCPServer:
    """The MCP app. ``on_engine`` is awaited once the engine exists (hardened mode seals its store).
    ``log_level`` is what reaches stderr (interlock's, the SDK's, botocore's and the HTTP server's
    lines); quiet by default, so a client's log shows only warnings and errors. ``sandboxes``: how
    many AWS sandboxes rehearse at once when the config leaves it unset (None: one, in process)."""
    holder = Holder()
    specs = {s.name: s for s in (*ALL_SPECS, *extra_specs)}
    exposed = policy.exposed(config, list(specs.values()))

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[AppContext]:
        if holder.context is not None:  # entered again (HTTP beside the sockets): the same engine
            holder.users += 1
            try:
                yield holder.context
            finally:
                holder.users -= 1
            return
        async with open_engine(
            config, "agent", playground="start", specs=extra_specs, sandboxes=sandboxes
        ) as engine:
            if on_engine is not None:
                await on_engine(engine)
            holder.context = AppContext(engine)
            try:
                yield holder.context
            finally:
                holder.context = None

    server: MCPServer = InterlockMCP(
        name="interlock",
        version=__version__,
        instructions=INSTRUCTIONS
        + (
            " This server runs on the PLAYGROUND: a local emulator, not real AWS."
            if config.is_playground
            else ""
        ),
        lifespan=lifespan,
        log_level=log_level,
    )
    for spec in exposed:
        fn, desc = make_tool(holder, spec, config.is_playground)
        server.add_tool(
            fn,
            name=spec.name,
            title=spec.title,
            description=desc,
            annotations=_annotations(spec),
            structured_output=False,
        )
    register_meta_tools(server, holder)
    return server
