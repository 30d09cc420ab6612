"""Converge the whole Hopwhistle stack on the config's desired state.

    pyinfra inventory.py deploys/full.py --dry    # what would change
    pyinfra inventory.py deploys/full.py -y       # converge
"""

from hopwhistle_deploy import steps

stack = steps.config()
steps.ports_free(stack)
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)
steps.attachments(stack)
steps.build(stack)
for service in stack.services:
    steps.swap(stack, service)
