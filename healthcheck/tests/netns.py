"""A small site in network namespaces, as the check's users meet the service.

    client namespace                      server namespace
    IPv4 only (::1 on lo, no IPv6   veth  10.111.0.1:80  nginx, stream module:
    route), /etc/hosts says         ----  round robin, a new backend per TCP
    nlb.test is 10.111.0.1,               connection, as an NLB picks a target
    2001:db8:11::1, 2001:db8:11::2        per flow -> two backends on 127.0.0.1

The name has an A and two AAAA records, as the stack's dual-stack NLB has; the
client host, like most cron hosts, cannot reach IPv6. `ip netns exec` puts
/etc/netns/NAME/hosts over /etc/hosts for what it runs.

Namespaces are named nowd-i11-...; their veth ends are made inside them, so
nothing is added to the host's own network. Needs root.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from nowd_testing import in_netns

SERVER_ADDRESS = "10.111.0.1"
CLIENT_ADDRESS = "10.111.0.2"
NAME = "nlb.test"
AAAA = ("2001:db8:11::1", "2001:db8:11::2")  # documentation prefix: never routed
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


class Site:
    """The two namespaces, the name, and nginx once backends() is called."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.client = f"nowd-i11-cli-{tag}"
        self.server = f"nowd-i11-srv-{tag}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"nowd-i11-{tag}-"))
        self.hosts_dir = Path("/etc/netns") / self.client
        self.processes: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None
        for ns in (self.client, self.server):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            "veth-cli",
            "netns",
            self.client,
            "type",
            "veth",
            "peer",
            "name",
            "veth-srv",
            "netns",
            self.server,
        )
        # No IPv6 on the client's only link: no link-local address, no route.
        sh(
            "ip",
            "netns",
            "exec",
            self.client,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.veth-cli.disable_ipv6=1",
        )
        sh("ip", "-n", self.client, "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", "veth-cli")
        sh("ip", "-n", self.server, "addr", "add", f"{SERVER_ADDRESS}/24", "dev", "veth-srv")
        for ns, dev in ((self.client, "veth-cli"), (self.server, "veth-srv")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        (self.hosts_dir / "hosts").write_text(
            "127.0.0.1 localhost\n::1 localhost\n"
            f"{SERVER_ADDRESS} {NAME}\n" + "".join(f"{a} {NAME}\n" for a in AAAA)
        )

    @property
    def client_prefix(self) -> tuple:
        return ("ip", "netns", "exec", self.client)

    def start_in_server(self, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.server, *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.processes.append(proc)
        return proc

    def wait_listening(self, address: str, port: int, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                in_netns(
                    self.server,
                    lambda: socket.create_connection((address, port), timeout=0.5).close(),
                )
                return
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nothing listens on {address}:{port} in "
                        f"{self.server}: {proc.stderr.read()!r}"
                    ) from None
                time.sleep(0.05)

    def balance(self, ports: list[int]) -> None:
        """nginx on SERVER_ADDRESS:80, round robin over 127.0.0.1:PORT."""
        if self.nginx is not None:
            self.nginx.terminate()
            self.nginx.wait(timeout=10)
        upstream = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
        conf = self.tmp / "nginx.conf"
        conf.write_text(
            f"load_module {NGINX_STREAM_MODULE};\n"
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {self.tmp}/nginx.pid;\nerror_log {self.tmp}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "stream {\n"
            "  upstream backends {\n" + upstream + "  }\n"
            f"  server {{ listen {SERVER_ADDRESS}:80; proxy_pass backends; }}\n"
            "}\n"
        )
        self.nginx = self.start_in_server(
            ["nginx", "-c", str(conf), "-p", str(self.tmp), "-e", str(self.tmp / "error.log")]
        )
        self.wait_listening(SERVER_ADDRESS, 80, self.nginx)

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for ns in (self.client, self.server):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)
        shutil.rmtree(self.hosts_dir, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
