"""The runbook's "Web Frontend Rebuild", safely: lock, checkout, build while the old web serves, swap,
health gate + smoke checks (rollback on failure), audit, unlock. The API is left alone.

    pyinfra inventory.py deploys/web.py -y
"""

from hopwhistle_deploy import steps

stack = steps.config()
names = ["web"]

run = steps.begin(stack, "web")
steps.ports_free(stack, names)
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)
steps.attachments(stack)
steps.not_known_bad(stack, names)
steps.build(stack, only=names)
steps.release(stack, run, "web")
steps.finish(stack, run)
