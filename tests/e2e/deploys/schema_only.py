"""The schema step on its own, with what it needs first (test deploy until steps.py calls it).

    HOPWHISTLE_CONFIG=... pyinfra inventory.py tests/e2e/deploys/schema_only.py -y
"""

from hopwhistle_deploy import steps
from operations import schema

stack = steps.config()
steps.checkout(stack)
steps.compose_inputs(stack)
steps.data(stack)
steps.attachments(stack)
steps.build(stack, only=["api"])

api = stack.services["api"]
schema.in_sync(
    name="Prisma schema in sync",
    image=api.image,
    network=stack.network,
    env_file=stack.env_file_path,
    postgres_container=stack.data_containers.postgres,
    database=stack.database.name,
    db_user=stack.database.user,
    project_path=stack.project_path,
    build_context=api.build_context,
    state_dir=stack.state_dir,
    backups_to_keep=stack.backups_to_keep,
    allow_data_loss=stack.allow_data_loss,
)
