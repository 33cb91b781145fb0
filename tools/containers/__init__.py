"""The containers toolset: reads that go to a Docker host, writes rehearsed on a disposable clone.

Addresses and state shapes (the diff compares these; volatile fields never decide):

- container ``docker:container/NAME``: ``{name, image, image_id, status, env, ports, mounts,
  labels, restart_policy, user, workdir, cmd, entrypoint}`` plus the volatile ``started_at,
  finished_at, pid, exit_code, restart_count``. Values of secret-looking environment variables
  (``*PASSWORD*``, ``*TOKEN*``, …) are shown as a hash of the value, never in clear.
- file ``docker:container/NAME:/abs/path``: ``{path, type, size, sha256, mode}`` (symlinks add
  ``target``); ``None`` when absent. Directories carry no content; the time they last changed
  (an entry added, removed or renamed) goes into the snapshot's context, so it makes an apply
  stale without ever being shown as a change.

Every write tool has a rehearsal (``rehearse.REHEARSALS``, run by ``sandbox.docker.DockerSandbox``
in a worker thread): commands and file writes run in a committed clone of the container, whose
``docker diff`` (plus a comparison of copied volumes) widens the footprint to the paths that
were touched; lifecycle changes run on a clone of the container (or of its image), and the
after-state is the production state with what the clone showed (its status, its image and
environment) put in.

One name per container: ``canonical`` turns a container named by its ID (or an ID prefix) into
the call on its name before policy decides, every read and change then acts on the container
*named* so (``_resolve``), and a snapshot carries the production ID behind each name in its
context, so a container deleted and created again under the same name makes an apply stale.
``watch`` reads each container's whole own filesystem right before an apply and again right after
it, so whatever the apply changed that the plan did not list is flagged.

Modules: common (addresses), errors, states, args, reads, execute, rehearse, naming (canonical
names), watching, specs.
"""

from .args import ContainerOnly, GetLogs, ListContainers, ListImages, ReadFile, RunArgs
from .common import container_address, kind_of, path_address
from .naming import canonical
from .specs import SPECS, TOOLSET
from .watching import watch

__all__ = [
    "SPECS",
    "TOOLSET",
    "ContainerOnly",
    "GetLogs",
    "ListContainers",
    "ListImages",
    "ReadFile",
    "RunArgs",
    "canonical",
    "container_address",
    "kind_of",
    "path_address",
    "watch",
]
