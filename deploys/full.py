"""Converge the whole Hopwhistle stack on the config's desired state, in the safe order
(see ``hopwhistle_deploy.steps.converge``).

    pyinfra inventory.py deploys/full.py --dry    # what would change
    pyinfra inventory.py deploys/full.py -y       # converge
    pyinfra inventory.py deploys/full.py -y --data lock_wait=120 --data break_stale_lock=true

Options (host data; see ``hopwhistle_deploy.steps``): lock_wait, break_stale_lock, lock_stale_after,
retry_failed, only, allow_data_loss. The hopwhistle CLI runs this same file through pyinfra's API.
"""

from hopwhistle_deploy import steps

stack = steps.config()
steps.converge(stack, "full", steps.only_services(stack))
