"""The runbook's "Web Frontend Rebuild", safely: lock, checkout, build while the old web serves, swap,
health gate + smoke checks (rollback on failure), audit, unlock. The API is left alone.

    pyinfra inventory.py deploys/web.py -y
"""

from hopwhistle_deploy import steps

steps.converge(steps.config(), "web", ["web"])
