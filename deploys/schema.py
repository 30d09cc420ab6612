"""The runbook's "Apply schema migration" (steps 3 and 6), safely: lock, checkout, data and
attachments, the schema in sync (never losing data unless allow_data_loss=true), audit, unlock.

    pyinfra inventory.py deploys/schema.py -y [--data allow_data_loss=true]
"""

from hopwhistle_deploy import steps

stack = steps.config()

run = steps.begin(stack, "schema")
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)
steps.attachments(stack)
steps.build(stack, only=["api"])  # the schema is diffed with the API image built from the checkout
steps.schema(stack)
steps.finish(stack, run)
