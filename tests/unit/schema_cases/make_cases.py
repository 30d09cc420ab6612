"""Regenerate the YAML cases for schema.in_sync: `.venv/bin/python tests/unit/schema_cases/make_cases.py`.

The commands come from the builders (tested on their own in test_schema_commands.py); review the diff by hand."""
import yaml
from pathlib import Path
from operations import schema_commands as sc

OUT = Path(__file__).parent / "in_sync"
KW = dict(image="docker-api", network="docker_default", env_file="/var/lib/hopwhistle/compose.env",
          postgres_container="hopwhistle-postgres-dev", database="callfabric", db_user="callfabric",
          project_path="/opt/hopwhistle", build_context="apps/api", state_dir="/var/lib/hopwhistle")
SCHEMA_FILE = "/opt/hopwhistle/apps/api/prisma/schema.prisma"
FP = "/var/lib/hopwhistle/schema.fingerprint"
STATE_KEY = (f"container=hopwhistle-postgres-dev, database=callfabric, fingerprint_file={FP}, "
             f"project_path=/opt/hopwhistle, schema_file={SCHEMA_FILE}, user=callfabric")
DRIFT_KEY = lambda mode: f"env_file=/var/lib/hopwhistle/compose.env, image=docker-api, mode={mode}, network=docker_default, schema=prisma/schema.prisma"
REV = "2" * 40
def state(recorded):
    return {"recorded": recorded, "schema_sha256": "s" * 64, "revision": REV, "db_md5": "d" * 32}
PRE = {
    "facts.DockerContainers": {"names=['hopwhistle-postgres-dev']": {"hopwhistle-postgres-dev": {
        "id": "c1", "name": "hopwhistle-postgres-dev", "status": "running", "running": True, "image_id": "sha256:p",
        "hostname": "", "labels": {}, "networks": {"docker_default": {"aliases": [], "dns_names": []}}, "published_ports": []}}},
    "facts.FileDigest": {f"path={SCHEMA_FILE}": {"exists": True, "mode": "644", "sha1": "x"},
                          "path=/var/lib/hopwhistle/compose.env": {"exists": True, "mode": "600", "sha1": "y"}},
    "facts.DockerImages": {"refs=['docker-api']": {"docker-api": {"id": "sha256:api", "labels": {"org.hopwhistle.source-tree": "t" * 40}, "repo_tags": []}}},
    "facts.GitTreeHashes": {"path=/opt/hopwhistle, subpaths=['apps/api']": {"apps/api": "t" * 40}},
    "schema_facts.PrismaCli": {"image=docker-api": {"version": "6.19.3", "adapter": True, "mode": "prisma6-adapter"}},
}
RUN = sc.PrismaRun("docker-api", "docker_default", "/var/lib/hopwhistle/compose.env")
WRITE = sc.write_fingerprint(FP, SCHEMA_FILE, "/opt/hopwhistle", "hopwhistle-postgres-dev", "callfabric", "callfabric")
def backup(frm, keep=5):
    return sc.backup("/var/lib/hopwhistle/backups", "hopwhistle-postgres-dev", "callfabric", "callfabric", frm, REV, keep)
ADD = '-- AlterTable\nALTER TABLE "Buyer" ADD COLUMN     "email" TEXT;'
DROP = '-- AlterTable\nALTER TABLE "Buyer" DROP COLUMN "phone";'
COUNTS = {"container=hopwhistle-postgres-dev, database=callfabric, tables=['Buyer'], user=callfabric": {"Buyer": 4}}

def case(name, comment, facts, commands, kwargs=None, noop=None, exception=None):
    data = {"kwargs": {**KW, **(kwargs or {})}, "facts": facts, "commands": commands}
    if noop: data["noop_description"] = noop
    if exception: data["exception"] = exception
    (OUT / f"{name}.yaml").write_text(f"# {comment}\n" + yaml.safe_dump(data, sort_keys=False, width=120))

fresh = f"schema={'s'*64} revision={'1'*40} db={'d'*32}"
case("fingerprint_unchanged", "Schema file and database as recorded: no Prisma call, nothing to do.",
     {**{k: v for k, v in PRE.items() if k != "schema_facts.PrismaCli"}, "schema_facts.SchemaState": {STATE_KEY: state(fresh)}},
     [], noop="schema of callfabric in sync: fingerprint unchanged, no Prisma diff needed")
case("in_sync_no_fingerprint", "No fingerprint yet: the full diff runs, says in sync, and the fingerprint is recorded.",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: state(None)},
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma6-adapter"): {"status": "in_sync", "sql": ""}}},
     [WRITE])
case("hand_made_alter", "The database's fingerprint changed (a hand-made ALTER TABLE): the full diff runs; additive.",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: {**state(fresh), "db_md5": "e" * 32}},
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma6-adapter"): {"status": "drift", "sql": ADD, "empty_database": False}}},
     [backup("1" * 40), sc.db_push(RUN, "prisma6-adapter", False), WRITE])
case("additive_prisma7", "Prisma 7 (mode given): backup, then db push without --skip-generate (7 never generates).",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: state(None)},
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma7"): {"status": "drift", "sql": ADD, "empty_database": False}}},
     [backup("", keep=3), sc.db_push(RUN, "prisma7", False), WRITE], kwargs={"prisma_mode": "prisma7", "backups_to_keep": 3})
case("destructive_refused", "Dropping a column that holds data, not allowed: refused before any command.",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: state(None)},
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma6-adapter"): {"status": "drift", "sql": DROP, "empty_database": False}}},
     [], exception={"name": "OperationError", "message": __import__("operations.schema", fromlist=["x"]).refusal_message(
         "callfabric", __import__("operations.sql_risk", fromlist=["x"]).classify(DROP), DROP)})
case("destructive_allowed", "The schema file changed; allowed in the config: backup, then db push --accept-data-loss.",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: {**state(fresh), "schema_sha256": "t" * 64}},
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma6-adapter"): {"status": "drift", "sql": DROP, "empty_database": False}}},
     [backup("1" * 40), sc.db_push(RUN, "prisma6-adapter", True), WRITE], kwargs={"allow_data_loss": True})
case("required_column_on_rows_refused", "A NOT NULL column without default on a table with rows: refused.",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: state(None)}, "schema_facts.TableRowCounts": COUNTS,
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma6-adapter"): {"status": "drift", "sql": 'ALTER TABLE "Buyer" ADD COLUMN "region" TEXT NOT NULL;', "empty_database": False}}},
     [], exception={"names": ["OperationError"], "name": "OperationError", "message": __import__("operations.schema", fromlist=["x"]).refusal_message(
         "callfabric", __import__("operations.sql_risk", fromlist=["x"]).classify('ALTER TABLE "Buyer" ADD COLUMN "region" TEXT NOT NULL;', {"Buyer": 4}), 'ALTER TABLE "Buyer" ADD COLUMN "region" TEXT NOT NULL;')})
case("diff_error", "Prisma could not diff: an error naming Prisma's message, nothing changed.",
     {**PRE, "schema_facts.SchemaState": {STATE_KEY: state(None)},
      "schema_facts.SchemaDrift": {DRIFT_KEY("prisma6-adapter"): {"status": "error", "sql": "", "message": "exit 1: Error: P1001: Can't reach database server"}}},
     [], exception={"name": "OperationError", "message": "prisma migrate diff (in docker-api) failed, nothing was changed:\nexit 1: Error: P1001: Can't reach database server"})
pre_detached = {**PRE, "facts.DockerContainers": {"names=['hopwhistle-postgres-dev']": {"hopwhistle-postgres-dev": {
        **PRE["facts.DockerContainers"]["names=['hopwhistle-postgres-dev']"]["hopwhistle-postgres-dev"], "networks": {"hopwhistle_default": {"aliases": [], "dns_names": []}}}}}}
stale = {**PRE, "facts.GitTreeHashes": {"path=/opt/hopwhistle, subpaths=['apps/api']": {"apps/api": "n" * 40}}}
case("planning_before_the_build", "Planning before the image is rebuilt from a new tree: the old image's schema is not the checkout's; no diff.",
     stale, [], noop="schema of callfabric: no diff while planning, until docker-api is built from apps/api at tree nnnnnnnnnnnn (it is from tttttttttttt)")
case("planning_before_attachment", "Planning while postgres is not on the network yet: the drift is unknown, no command.",
     pre_detached, [], noop="schema of callfabric: no diff while planning, until hopwhistle-postgres-dev is on docker_default")
