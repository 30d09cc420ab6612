"""Pure functions that build the server-side scripts of a release: the deploy lock, the health gate with
its smoke checks and automatic rollback, the audit log, and what revision each service runs.

Each builder returns one shell command (``bash -c '<script>'``) so the whole step runs on the server in
one round trip, the same over ``@local`` and ``@ssh``. Every value is shell-quoted; no secret ever goes
into a script (smoke-check headers are config values such as the demo tenant id).

Files in the state dir (mode 0700, files 0600 via ``umask 077``):

- ``deploy.lock/``: the lock, a directory (``mkdir`` is atomic); ``deploy.lock/holder`` holds
  ``key=value`` lines: ``user``, ``host`` (the machine running the deploy), ``pid``, ``time``,
  ``revision`` (what it deploys) and ``token`` (the run's id, so a run only ever releases its own lock);
- ``generation``: the token of the last run that released the lock; a run that inspected the server
  without the lock takes it only if this is unchanged (no other deploy ran in between);
- ``audit.log``: one JSON line per deploy that took the lock (a run that changes nothing takes none);
- ``failed-releases``: one tab-separated line per release that failed its health gate:
  ``service, tree, commit, time, result, token`` (``result``: ``rolled-back``, ``rollback-unhealthy``
  or ``not-rolled-back``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from shlex import quote

from operations import commands
from operations.commands import PREVIOUS_TAG, SOURCE_TREE_LABEL, Compose

LOCK_NAME = "deploy.lock"
GENERATION_NAME = "generation"
AUDIT_NAME = "audit.log"
FAILED_RELEASES_NAME = "failed-releases"
VERIFIED_RELEASES_NAME = "verified-releases"
FAILED_TAG = "hopwhistle-failed"
# Failed releases that were rolled back: the server runs the earlier image, so the guard refuses the tree.
# A "not-rolled-back" failure still runs: the next deploy runs its health gate again instead.
ROLLED_BACK_RESULTS = ("rolled-back", "rollback-unhealthy")
HOLDER_KEYS = ("user", "host", "pid", "time", "revision", "token")


def _path(state_dir: str, name: str) -> str:
    return posixpath.join(state_dir.rstrip("/") or "/", name)


def lock_path(state_dir: str) -> str:
    return _path(state_dir, LOCK_NAME)


def generation_path(state_dir: str) -> str:
    return _path(state_dir, GENERATION_NAME)


def audit_path(state_dir: str) -> str:
    return _path(state_dir, AUDIT_NAME)


def failed_releases_path(state_dir: str) -> str:
    return _path(state_dir, FAILED_RELEASES_NAME)


def verified_releases_path(state_dir: str) -> str:
    return _path(state_dir, VERIFIED_RELEASES_NAME)


def bash(script: str) -> str:
    return f"bash -c {quote(script)}"


# -- lock --------------------------------------------------------------------------------------------


def _holder_value(key: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"lock holder {key}: value cannot contain a newline")
    return value


def lock_acquire(
    state_dir: str,
    holder: dict[str, str],
    wait_seconds: int = 0,
    stale_after_seconds: int = 3600,
    break_stale: bool = False,
    revision_of: tuple[str, str, str] | None = None,
    expect_generation: str | None = None,
    then: str = "",
) -> str:
    """Take the deploy lock: ``mkdir <state_dir>/deploy.lock``, then write the holder file.

    When another run holds it: retry every second for ``wait_seconds``, then fail (exit 1) naming the
    holder. A lock older than ``stale_after_seconds``, or whose holder process is gone (checked only
    when the holder ran on this same machine: its ``host`` equals ``hostname``), is stale; it is broken
    (renamed away atomically, then removed) only when ``break_stale`` is set, otherwise the message
    says how. ``revision_of`` = (project_path, remote, branch): the holder's ``revision`` is the
    remote tip the run deploys (``git ls-remote``), else "unknown".
    ``expect_generation``: the ``generation`` the run read when it inspected the server; if another
    run released the lock since, the lock is given back and the script fails (exit 1) asking for a
    new run. Prints ``acquired …`` on success, then the output of ``then`` (a command run under the lock).
    """
    lock = lock_path(state_dir)
    lines = [f"{key}={_holder_value(key, str(holder[key]))}" for key in HOLDER_KEYS if key != "revision"]
    if revision_of:
        project_path, remote, branch = revision_of
        revision = (
            f"$(git -C {quote(project_path)} ls-remote {quote(remote)} {quote('refs/heads/' + branch)}"
            " 2>/dev/null | cut -f1)"
        )
    else:
        revision = ""
    generation_check = ""
    if expect_generation is not None:
        generation_check = (
            f'    if [ "$(cat {quote(generation_path(state_dir))} 2>/dev/null)" != {quote(expect_generation)} ]; then\n'
            '      rmdir "$lock"\n'
            '      echo "another deploy ran on this server since this run inspected it; nothing was changed: run the deploy again"\n'
            "      exit 1\n"
            "    fi\n"
        )
    script = f"""
set -u
dir={quote(state_dir)}; lock={quote(lock)}
install -d -m 700 "$dir" || exit 2
revision={revision}
tries=0
waited=""
while :; do
  if mkdir "$lock" 2>/dev/null; then
{generation_check}    chmod 700 "$lock"
    ( umask 077; printf '%s\\n' {" ".join(quote(line) for line in lines)} "revision=${{revision:-unknown}}" > "$lock/holder" )
    echo "acquired $lock${{waited:+ after waiting}}"
{then}
    exit 0
  fi
  holder=$(cat "$lock/holder" 2>/dev/null || true)
  field() {{ printf '%s\\n' "$holder" | sed -n "s/^$1=//p" | head -n 1; }}
  h_user=$(field user); h_host=$(field host); h_pid=$(field pid); h_time=$(field time); h_rev=$(field revision)
  if [ -n "$holder" ]; then
    who="$h_user@$h_host (pid $h_pid) since $h_time, deploying ${{h_rev:-unknown}}"
  else
    who="an unknown holder (no holder file)"
  fi
  now=$(date +%s)
  age=$(( now - $(stat -c %Y "$lock" 2>/dev/null || echo "$now") ))
  stale=""
  if [ "$age" -ge {int(stale_after_seconds)} ]; then
    stale="held for $age s, longer than {int(stale_after_seconds)} s"
  elif [ -n "$h_pid" ] && [ "$h_host" = "$(hostname)" ] && [ ! -d "/proc/$h_pid" ]; then
    stale="holder process $h_pid is gone"
  fi
  if [ -n "$stale" ] && [ {1 if break_stale else 0} = 1 ]; then
    echo "breaking the stale deploy lock held by $who ($stale)" >&2
    mv "$lock" "$lock.broken.$$" 2>/dev/null && rm -rf "$lock.broken.$$"
    continue
  fi
  if [ "$tries" -ge {int(wait_seconds)} ]; then
    echo "deploy lock $lock is held by $who"
    if [ -n "$stale" ]; then
      echo "the lock looks stale ($stale); break it with break_stale_lock=true"
    else
      echo "another deploy is running; wait for it (lock_wait=SECONDS) or, if it died, break the lock with break_stale_lock=true once it is stale"
    fi
    exit 1
  fi
  waited=1; tries=$((tries + 1))
  sleep 1
done
"""
    return bash(script.strip())


def lock_release(state_dir: str, token: str) -> str:
    """Remove the lock only when this run (``token``) holds it, recording ``token`` as the new
    generation first; prints what it did."""
    lock = lock_path(state_dir)
    script = (
        f"lock={quote(lock)}; "
        f'if [ -f "$lock/holder" ] && grep -qxF {quote("token=" + token)} "$lock/holder"; then '
        f"( umask 077; printf '%s\\n' {quote(token)} > {quote(generation_path(state_dir))} ) && "
        f'rm -rf "$lock" && echo "released $lock"; '
        f'else echo "not held by this run: $lock"; fi'
    )
    return bash(script)


def read_lock(state_dir: str) -> str:
    """``held`` or ``free``, ``generation <token>``, then the holder's ``key=value`` lines."""
    lock = quote(lock_path(state_dir))
    return (
        f"if [ -d {lock} ]; then echo held; else echo free; fi; "
        f"printf 'generation %s\\n' \"$(cat {quote(generation_path(state_dir))} 2>/dev/null)\"; "
        f"cat {lock}/holder 2>/dev/null; true"
    )


def parse_lock(lines: list[str]) -> dict:
    """What ``read_lock`` printed: ``held`` (bool), ``generation`` (str), ``holder`` (dict)."""
    if not lines or lines[0].strip() not in ("held", "free"):
        raise ValueError(f"unexpected output from the lock check: {lines[:3]}")
    generation = next((line.split(" ", 1)[1].strip() for line in lines[1:2] if line.startswith("generation ")), None)
    if generation is None:
        raise ValueError(f"unexpected output from the lock check: {lines[:3]}")
    holder = dict(line.split("=", 1) for line in lines[2:] if "=" in line)
    return {"held": lines[0].strip() == "held", "generation": generation, "holder": holder}


def audit_and_release(state_dir: str, line: str, token: str) -> str:
    """The end of a run that took the lock: its audit entry appended, then the lock released even when
    the append failed (exit 1 then, naming the log)."""
    return (
        f"{{ {audit_append(state_dir, line)}; }} || {{ echo {quote('could not append to ' + audit_path(state_dir))}; "
        f"failed=1; }}; {lock_release(state_dir, token)}; exit ${{failed:-0}}"
    )


# -- revisions and audit -----------------------------------------------------------------------------


def revisions(project_path: str, containers: dict[str, str]) -> str:
    """``git <HEAD sha | none>`` then ``service <name> <image id> <source-tree label>`` (or ``none``)
    per service container. Never fails: it describes, it does not check."""
    label_format = f'{{{{.Image}}}} {{{{index .Config.Labels "{SOURCE_TREE_LABEL}"}}}}'
    parts = [f"printf 'git %s\\n' \"$(git -C {quote(project_path)} rev-parse HEAD 2>/dev/null || echo none)\""]
    for service, container in containers.items():
        parts.append(
            f"i=$(docker container inspect -f {quote(label_format)} {quote(container)} 2>/dev/null"
            f" | head -n 1) && [ -n \"$i\" ] || i=none; printf 'service %s %s\\n' {quote(service)} \"$i\""
        )
    return "; ".join(parts)


@dataclass(frozen=True)
class Revisions:
    git: str | None  # HEAD of the checkout
    images: dict[str, str | None]  # service -> image id its container runs
    trees: dict[str, str | None]  # service -> source-tree label of that image

    def to_dict(self) -> dict:
        return {
            "git": self.git,
            "services": {name: {"image": self.images[name], "tree": self.trees[name]} for name in self.images},
        }


def parse_revisions(lines: list[str]) -> Revisions:
    git = None
    images: dict[str, str | None] = {}
    trees: dict[str, str | None] = {}
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "git":
            git = None if words[1] == "none" else words[1]
        elif len(words) >= 3 and words[0] == "service":
            service, rest = words[1], words[2:]
            if rest == ["none"]:
                images[service], trees[service] = None, None
            else:
                images[service] = rest[0]
                label = rest[1] if len(rest) > 1 else ""
                trees[service] = None if label in ("", "<no", "<no value>") else label
    return Revisions(git=git, images=images, trees=trees)


def audit_append(state_dir: str, line: str) -> str:
    """Append one line to the audit log; the state dir stays 0700, the log 0600."""
    if "\n" in line:
        raise ValueError("an audit entry is one line")
    path = audit_path(state_dir)
    return (
        f"{commands.state_dir(state_dir)} && ( umask 077; printf '%s\\n' {quote(line)} >> {quote(path)} )"
        f" && chmod 600 {quote(path)}"
    )


def read_failed_releases(state_dir: str) -> str:
    path = quote(failed_releases_path(state_dir))
    # A header line first: pyinfra takes a fact with no output for "could not ask".
    return f"echo '# failed releases'; if [ -f {path} ]; then cat {path}; fi"


def parse_failed_releases(lines: list[str]) -> list[dict[str, str]]:
    keys = ("service", "tree", "commit", "time", "result", "token")
    records = []
    for line in lines:
        if line.startswith("#"):
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) == len(keys):
            records.append(dict(zip(keys, fields)))
    return records


def read_verified_releases(state_dir: str) -> str:
    path = quote(verified_releases_path(state_dir))
    return f"echo '# verified releases'; if [ -f {path} ]; then cat {path}; fi"


def parse_verified_releases(lines: list[str]) -> dict[str, str]:
    """``service<TAB>image id`` lines -> the image each service last passed its health gate on."""
    verified = {}
    for line in lines:
        service, sep, image_id = line.rstrip("\n").partition("\t")
        if sep and not service.startswith("#"):
            verified[service] = image_id
    return verified


# -- health gate, smoke checks, rollback ---------------------------------------------------------------


@dataclass(frozen=True)
class HttpCheck:
    """One request to a service's published port on the server."""

    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    expect_status: int = 200
    expect_json: bool = False

    def describe(self) -> str:
        what = f"{self.expect_status}" + (" with JSON" if self.expect_json else "")
        headers = "".join(f" {name}: {value}" for name, value in self.headers)
        return f"{self.method} {self.path}{' (' + headers.strip() + ')' if headers else ''} -> {what}"


# bash functions shared by the gate: hw_get PORT METHOD PATH [HEADER...] sets HW_STATUS (000 when
# nothing answered) and writes the body to $HW_BODY. curl when the server has it (the runbook uses it),
# else bash's /dev/tcp (HTTP/1.0 to 127.0.0.1).
_HTTP_FUNCTIONS = r"""
hw_raw() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n' "$2" "$3" >&3
  shift 3
  for h in "$@"; do printf '%s\r\n' "$h" >&3; done
  printf '\r\n' >&3
  cat <&3
}
hw_get() {
  local port=$1 method=$2 path=$3; shift 3
  : > "$HW_BODY"
  if command -v curl >/dev/null 2>&1; then
    local args=(-sS -m 5 -o "$HW_BODY" -w '%{http_code}')
    [ "$method" = HEAD ] && args+=(-I)
    local h; for h in "$@"; do args+=(-H "$h"); done
    HW_STATUS=$(curl "${args[@]}" "http://127.0.0.1:$port$path" 2>/dev/null) || true
  else
    timeout 5 bash -c "$(declare -f hw_raw); hw_raw \"\$@\"" _ "$port" "$method" "$path" "$@" > "$HW_BODY.raw" 2>/dev/null || true
    HW_STATUS=$(head -n 1 "$HW_BODY.raw" | cut -d' ' -f2)
    sed '1,/^\r\{0,1\}$/d' "$HW_BODY.raw" > "$HW_BODY"
  fi
  case "$HW_STATUS" in [0-9][0-9][0-9]) ;; *) HW_STATUS=000 ;; esac
}
hw_is_json() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null
  else
    local c; c=$(tr -d ' \t\r\n' < "$1" | head -c 1)
    [ "$c" = "{" ] || [ "$c" = "[" ]
  fi
}
hw_body() { head -c 300 "$HW_BODY" | tr '\n' ' '; }
"""


def gate_script(
    *,
    service: str,
    container: str,
    image: str,
    port: int,
    health_path: str,
    smoke_checks: list[HttpCheck],
    timeout_seconds: float,
    compose: Compose,
    state_dir: str,
    project_path: str,
    tree: str,
    token: str,
    rollback_to: str | None,
    rollback: bool = True,
) -> str:
    """After a swap: retry ``GET health_path`` on 127.0.0.1:``port`` until it answers 2xx (or
    ``timeout_seconds``; a container that exited or restarted twice fails at once), then run the smoke
    checks. On success: exit 0 and forget an earlier failure of this same tree.

    On failure, and only then, print the failed check, the last 50 lines of the container's logs,
    and roll back (unless ``rollback`` is False): tag the failed image ``<repo>:hopwhistle-failed``,
    tag ``rollback_to`` (the image id the container ran before the deploy; else
    ``<repo>:hopwhistle-previous``) as ``image``, recreate the service with
    ``compose up -d --no-deps --no-build --force-recreate``, wait for health again, say what was rolled
    back, record the failed release in ``failed-releases`` and exit 1.
    """
    repo = commands.image_repository(image)
    failed_file = failed_releases_path(state_dir)
    verified_file = verified_releases_path(state_dir)
    timeout = max(1, int(round(timeout_seconds)))

    smoke_lines = []
    for check in smoke_checks:
        headers = " ".join(quote(f"{name}: {value}") for name, value in check.headers)
        condition = f'[ "$HW_STATUS" = {check.expect_status} ]'
        if check.expect_json:
            condition += ' && hw_is_json "$HW_BODY"'
        smoke_lines.append(
            f"""if [ -z "$fail" ]; then
  hw_get {port} {quote(check.method)} {quote(check.path)} {headers}
  if {condition}; then echo "ok: smoke check "{quote(check.describe())}
  else fail="smoke check "{quote(check.describe())}" failed: got $HW_STATUS $(hw_body)"; fi
fi"""
        )

    up = commands.compose_up(compose, service, force_recreate=True)
    record_key = f"{service}\t{tree}\t"
    script = f"""
set -u
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
HW_BODY="$tmp/body"
{_HTTP_FUNCTIONS}
container={quote(container)}; service={quote(service)}; health_path={quote(health_path)}
failed_image={quote(repo + ":" + FAILED_TAG)}
last=""
wait_healthy() {{
  local deadline=$(( $(date +%s) + $1 )) st
  while :; do
    hw_get {port} GET {quote(health_path)}
    case "$HW_STATUS" in 2??) return 0 ;; esac
    last="GET $health_path answered $HW_STATUS $(hw_body)"
    st=$(docker container inspect -f '{{{{.State.Status}}}} {{{{.RestartCount}}}} {{{{.State.ExitCode}}}}' "$container" 2>/dev/null || echo "missing 0 -")
    set -- $st
    if [ "$1" = exited ] || [ "$1" = dead ] || [ "$1" = missing ] || [ "$2" -ge 2 ]; then
      last="container $container is $1 (restarts: $2, exit code: $3); $last"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then last="no 2xx within {timeout} s; $last"; return 1; fi
    sleep 0.5
  done
}}
fail=""
if wait_healthy {timeout}; then echo "ok: GET $health_path on port {port} answers $HW_STATUS"
else fail="health gate failed: $last"; fi
{chr(10).join(smoke_lines)}
if [ -z "$fail" ]; then
  if [ -f {quote(failed_file)} ]; then
    grep -v "^{record_key}" {quote(failed_file)} > {quote(failed_file + ".tmp")}; mv {quote(failed_file + ".tmp")} {quote(failed_file)}
  fi
  # The image that passed: a later deploy gates any other image it finds running (e.g. one swapped in
  # by a deploy killed before its gate).
  verified_image=$(docker container inspect -f '{{{{.Image}}}}' "$container" 2>/dev/null || true)
  install -d -m 700 {quote(state_dir)}
  ( umask 077; {{ grep -v "^$service"$'\\t' {quote(verified_file)} 2>/dev/null; printf '%s\t%s\n' "$service" "$verified_image"; }} > {quote(verified_file + ".tmp")} && mv {quote(verified_file + ".tmp")} {quote(verified_file)} )
  exit 0
fi
echo "FAILED $service: $fail"
echo "--- last 50 lines of docker logs $container ---"
logs=$(docker logs --tail 50 "$container" 2>&1) || logs="(no logs: container $container is missing)"
printf '%s\n' "${{logs:-(the container wrote nothing to its log)}}"
echo "--- end of logs ---"
new=$(docker container inspect -f '{{{{.Image}}}}' "$container" 2>/dev/null || true)
prev={quote(rollback_to or "")}
[ -n "$prev" ] || prev=$(docker image inspect -f '{{{{.Id}}}}' {quote(repo + ":" + PREVIOUS_TAG)} 2>/dev/null || true)
commit=$(git -C {quote(project_path)} rev-parse HEAD 2>/dev/null || echo unknown)
result=not-rolled-back
if [ {1 if rollback else 0} != 1 ]; then
  echo "NOT ROLLED BACK: rollback is off for this step"
elif [ -z "$prev" ]; then
  echo "NOT ROLLED BACK: there is no earlier image of $service to go back to (first deploy)"
elif [ "$prev" = "$new" ]; then
  echo "NOT ROLLED BACK: the earlier image of $service is the one that failed"
else
  [ -n "$new" ] && docker tag "$new" {quote(repo + ":" + FAILED_TAG)}
  echo "rolling back $service: image ${{new:-none}} -> $prev"
  if docker tag "$prev" {quote(image)} && {up}; then
    if wait_healthy {timeout}; then
      result=rolled-back
      echo "ROLLED BACK: $service runs the earlier image $prev again and GET $health_path answers $HW_STATUS; the failed image is tagged $failed_image"
    else
      result=rollback-unhealthy
      echo "ROLLED BACK, BUT STILL UNHEALTHY: $service runs the earlier image $prev; $last"
    fi
  else
    result=rollback-unhealthy
    echo "ROLLBACK FAILED: could not recreate $service on $prev"
  fi
fi
install -d -m 700 {quote(state_dir)}
( umask 077; printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' {quote(service)} {quote(tree)} "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$result" {quote(token)} >> {quote(failed_file)} )
if [ "$result" = not-rolled-back ]; then
  echo "recorded: $service at tree {tree[:12]} (commit ${{commit:0:12}}) failed and still runs; the next deploy checks it again"
else
  echo "recorded: $service at tree {tree[:12]} (commit ${{commit:0:12}}) failed; the next deploy refuses this tree until a fix is pushed (or retry_failed=true)"
fi
exit 1
"""
    return bash(script.strip())
