"""The schema step with only what it needs first, and no lock or audit: the schema tests count what this
run changes.

    HOPWHISTLE_CONFIG=... pyinfra inventory.py tests/e2e/deploys/schema_only.py -y
"""

from hopwhistle_deploy import steps

stack = steps.config()
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)
steps.attachments(stack)
steps.build(stack, only=["api"])
steps.schema(stack)
