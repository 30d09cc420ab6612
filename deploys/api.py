"""The runbook's "Rebuild API Container" (steps 2-7), safely: lock, checkout, data and attachments,
build while the old API serves, schema, swap, health gate + smoke checks (rollback on failure), audit,
unlock. Web is left alone.

    pyinfra inventory.py deploys/api.py -y
"""

from hopwhistle_deploy import steps

steps.converge(steps.config(), "api", ["api"])
