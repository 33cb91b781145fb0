"""Hardened mode: the same engine, store and policy, run as a service user that alone holds the
production credentials and the store.

  cli.py       `interlock service install|run|status|token`, `interlock bridge`
  install.py   `service install` (user, directories, config, unit) and `service status` (the checks)
  keys.py      the service key: MACs on the events only the service may write (approvals, kill switch)
  peers.py     who is on the other end of a Unix socket (SO_PEERCRED), approver and agent sets
  signing.py   SSHSIG signed approvals (OpenSSH `ssh-keygen -Y`), allowed_signers
  server.py    `service run`: the agent socket (MCP), the approver socket, HTTP with agent tokens
  approver.py  the approver socket's operations (approve, reject, apply, freeze, thaw, show, ...)
  client.py    the human CLI's side of the approver socket
  bridge.py    `interlock bridge`: the agent-side stdio relay to the agent socket
  tokens.py    per-agent bearer tokens for HTTP, stored hashed
"""
