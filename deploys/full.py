"""Converge the whole Hopwhistle stack on the config's desired state, in the safe order.

    pyinfra inventory.py deploys/full.py --dry    # what would change
    pyinfra inventory.py deploys/full.py -y       # converge
    pyinfra inventory.py deploys/full.py -y --data lock_wait=120 --data break_stale_lock=true

Options (host data; see ``hopwhistle_deploy.steps``): lock_wait, break_stale_lock, lock_stale_after,
retry_failed, only, allow_data_loss. The hopwhistle CLI runs this same file through pyinfra's API.
"""

from hopwhistle_deploy import steps

stack = steps.config()
names = steps.only_services(stack)

run = steps.begin(stack, "full")  # lock (released on failure too), revisions before
steps.ports_free(stack)  # fail before any change when a foreign container holds a port
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)  # strays absent, data containers running
steps.attachments(stack)  # network, data containers attached with their aliases
steps.not_known_bad(stack, names)  # refuse a release that already failed its health gate here
steps.build(stack, only=names)  # the old containers keep serving meanwhile
steps.schema(stack)  # after the build, before the API swap; refuses data loss unless allowed
for service in names:  # api first, then web: swap, health gate, smoke checks, rollback on failure
    steps.release(stack, run, service)
steps.finish(stack, run)  # audit entry, unlock
