"""One name per container (canonical names): IDs and ID prefixes resolved to names before policy decides."""

from __future__ import annotations

from typing import Any

from interlock.sandbox.lazy import docker, requests

from ..spec import ToolFailure
from .args import ListContainers, ListImages, RunArgs
from .errors import _describe, _explanation
from .states import _inspect, _name_of

NOT_A_CONTAINER = (ListContainers, ListImages)  # their `name` is a filter, not a container
REF_FIELDS = ("container", "name")


def canonical(client: Any, args: Any, place: Any = None) -> Any:
    """The call with its container named as its address names it: by its name. Docker also finds a
    container by its full ID or an ID prefix; policy must decide on one address per container, so
    ``inspect_container(name=ID)`` becomes ``inspect_container(name=NAME)`` before scopes are read.

    A container that does not exist is left as named (run_container creates it; the other tools
    fail later with their own message). Refused: a reference that several containers answer to (an
    ambiguous ID prefix, a name that is also another container's ID), and a new container's name
    that already finds an existing container through its ID.
    """
    if isinstance(args, NOT_A_CONTAINER):
        return args
    fields = type(args).model_fields
    key = next((f for f in REF_FIELDS if f in fields), None)
    ref = getattr(args, key, None) if key else None
    if key is None or not isinstance(ref, str) or not ref:
        return args
    try:
        attrs = _inspect(client, ref)
    except docker.errors.APIError as exc:
        if "multiple" in _explanation(exc).lower():
            raise ToolFailure(
                f"{ref!r} is the beginning of the IDs of several containers, so it does not name one",
                "name the container by its name, as list_containers shows it",
            ) from exc
        raise _describe(exc, f"container {ref!r}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _describe(exc, f"container {ref!r}") from exc
    if attrs is None:
        return args
    name, cid = _name_of(attrs), str(attrs["Id"])
    if isinstance(args, RunArgs):
        if name != ref:
            raise ToolFailure(
                f"{ref!r} already refers to the existing container {name!r} (it is the beginning of its ID), "
                "so a new container of that name could not be told apart from it",
                "choose another name for the new container",
            )
        return args
    back = _inspect(client, name)
    if back is None or str(back["Id"]) != cid:
        other = _name_of(back) if back else "no container"
        raise ToolFailure(
            f"{ref!r} is ambiguous: it finds container {name!r}, but the name {name!r} finds {other!r}",
            "rename one of the containers, or name the one you mean by its full ID",
        )
    if name == ref:
        return args
    return args.model_copy(update={key: name})
