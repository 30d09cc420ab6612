"""An sshd on 127.0.0.1 with throwaway keys, so the reconciler can be run over `@ssh` against this machine.

    python -m testbed.sshd start     # prints the ssh settings (host, port, user, key, known_hosts)
    python -m testbed.sshd stop

Only ever listens on loopback. Keys and config live in ``work_dir`` (default /var/lib/hopwhistle-testbed/sshd).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


@dataclass
class LoopbackSshd:
    work_dir: Path = Path("/var/lib/hopwhistle-testbed/sshd")
    port: int = 2222
    host: str = "127.0.0.1"
    user: str = "root"

    @property
    def client_key(self) -> Path:
        return self.work_dir / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.work_dir / "known_hosts"

    @property
    def host_key(self) -> Path:
        return self.work_dir / "host_ed25519"

    @property
    def pid_file(self) -> Path:
        return self.work_dir / "sshd.pid"

    def _install(self) -> None:
        if SSHD.exists():
            return
        print("[sshd] installing openssh-server", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"},
        )

    def _keys(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for key in (self.host_key, self.client_key):
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = self.work_dir / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        authorized.chmod(0o600)
        host_public = Path(f"{self.host_key}.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {' '.join(host_public)}\n")

    def _config(self) -> Path:
        config = self.work_dir / "sshd_config"
        config.write_text(
            f"ListenAddress {self.host}\n"
            f"Port {self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.pid_file}\n"
            f"AuthorizedKeysFile {self.work_dir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "MaxStartups 100\n"
            "MaxSessions 100\n"
            "AcceptEnv LANG LC_*\n"
            "Subsystem sftp internal-sftp\n"
        )
        return config

    def running(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self) -> None:
        if self.running():
            return
        self._install()
        self._keys()
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        subprocess.run([str(SSHD), "-f", str(self._config())], check=True)
        deadline = time.monotonic() + 10
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not listen on {self.host}:{self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.pid_file.exists():
            try:
                os.kill(int(self.pid_file.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
            self.pid_file.unlink(missing_ok=True)

    def ssh_settings(self) -> dict[str, object]:
        """The pyinfra host data that reaches this sshd with the throwaway key, its host key pinned."""
        return {
            "ssh_hostname": self.host,
            "ssh_port": self.port,
            "ssh_user": self.user,
            "ssh_key": str(self.client_key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        }

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--port", type=int, default=LoopbackSshd.port)
    args = parser.parse_args()
    sshd = LoopbackSshd(port=args.port)
    if args.action == "start":
        sshd.start()
        for key, value in sshd.ssh_settings().items():
            print(f"{key}={value}")
    else:
        sshd.stop()


if __name__ == "__main__":
    main()
