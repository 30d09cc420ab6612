"""The runbook's "Fix Network Connections" (step 5 and the ENOTFOUND fixes), safely: lock, strays
absent, data containers running, docker_default with Postgres and Redis (alias redis) attached; then,
if that changed anything, the API's health gate and smoke checks (no rollback: nothing was swapped),
audit, unlock.

    pyinfra inventory.py deploys/network.py -y
"""

from hopwhistle_deploy import steps

stack = steps.config()

run = steps.begin(stack, "network")
steps.data(stack)
attached = steps.attachments(stack)
if "api" in stack.services:
    steps.check(stack, run, "api", after=attached)
steps.finish(stack, run)
