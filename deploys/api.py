"""The runbook's "Rebuild API Container" (steps 2-7), safely: lock, checkout, data and attachments,
build while the old API serves, schema, swap, health gate + smoke checks (rollback on failure), audit,
unlock. Web is left alone.

    pyinfra inventory.py deploys/api.py -y
"""

from hopwhistle_deploy import steps

stack = steps.config()
names = ["api"]

run = steps.begin(stack, "api")
steps.ports_free(stack, names)
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)
steps.attachments(stack)
steps.not_known_bad(stack, names)
steps.build(stack, only=names)
steps.schema(stack)  # after the build, before the API swap; refuses data loss unless allowed
steps.release(stack, run, "api")
steps.finish(stack, run)
