"""The pieces of a first boot without AWS: a network namespace of the test's
own, the services EC2 has at link-local addresses (a time server at
169.254.169.123 and an instance metadata service at 169.254.169.254) played
by the test, and the image booted by qemu (TCG) with user networking, which
carries the guest's traffic to those addresses in the namespace and
forwards port 80 back.
"""

import contextlib
import http.server
import json
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "testing"))
from nowd_testing import NTP_EPOCH_OFFSET_S, in_netns

TIME_SYNC = "169.254.169.123"
IMDS = "169.254.169.254"


class Netns:
    """A network namespace with loopback up and EC2's link-local addresses on it.
    Nothing in it routes anywhere: traffic stays in the namespace."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "add", name], check=True)
        for cmd in (
            ["link", "set", "lo", "up"],
            ["addr", "add", f"{TIME_SYNC}/32", "dev", "lo"],
            ["addr", "add", f"{IMDS}/32", "dev", "lo"],
        ):
            subprocess.run(["ip", "-n", name, *cmd], check=True)

    def call(self, fn, *args):
        """fn(*args) in a thread that entered the namespace: a socket made
        there belongs to the namespace, whichever thread uses it later."""
        return in_netns(self.name, lambda: fn(*args))

    def socket(self, *args):
        return self.call(socket.socket, *args)

    def command(self, *argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)


def ntp_stamp(ns):
    secs, rest = divmod(ns, 1_000_000_000)
    return ((secs + NTP_EPOCH_OFFSET_S) << 32) | (rest << 32) // 1_000_000_000


class TimeServer:
    """A stratum-1 SNTP server whose time is this machine's clock plus
    `offset_s`, and which can be made silent. Counts the queries it gets."""

    def __init__(self, netns, host, port=123):
        self.offset_s = 0.0
        self.silent = False
        self.queries = 0
        self.sock = netns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.address = f"{host}:{port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def now_ns(self):
        return time.time_ns() + int(self.offset_s * 1e9)

    def _serve(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                return
            t2 = self.now_ns()
            if len(q) < 48 or q[0] & 7 != 3:
                continue
            self.queries += 1
            if self.silent:
                continue
            t3 = self.now_ns()
            # Leap 0, version 4, mode 4; stratum 1; root delay 0, root
            # dispersion 16/65536 s; origin = the query's transmit stamp.
            a = struct.pack(
                "!BBbbII4sQQQQ",
                0x24,
                1,
                4,
                -20,
                0,
                16,
                b"TEST",
                ntp_stamp(t3 - 1_000_000_000),
                int.from_bytes(q[40:48], "big"),
                ntp_stamp(t2),
                ntp_stamp(t3),
            )
            with contextlib.suppress(OSError):
                self.sock.sendto(a, peer)

    def close(self):
        self.sock.close()


class MetadataService:
    """EC2's instance metadata service as cloud-init's EC2 datasource uses it,
    IMDSv2 only (the AMI's imds_support = "v2.0"): a PUT for a token, then
    GETs that carry it; a GET without one is refused with 401, as on EC2.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
    """

    def __init__(self, netns, instance):
        self.tree = metadata_tree(instance)
        self.token = secrets.token_urlsafe(32)
        self.requests = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_PUT(self):
                service.requests.append(
                    (
                        "PUT",
                        self.path,
                        bool(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")),
                    )
                )
                if self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self.answer(200, service.token)
                else:
                    self.answer(400, "")

            def do_GET(self):
                has_token = self.headers.get("X-aws-ec2-metadata-token") == service.token
                service.requests.append(("GET", self.path, has_token))
                if not has_token:
                    return self.answer(401, "")
                parts = self.path.strip("/").split("/", 1)
                node = service.tree if len(parts) == 2 else None
                for p in parts[1].split("/") if node else []:
                    node = node.get(p) if isinstance(node, dict) else None
                if node is None:
                    self.answer(404, "")
                elif isinstance(node, dict):
                    self.answer(
                        200,
                        "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items()),
                    )
                else:
                    self.answer(200, node)

            def answer(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        sock = netns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((IMDS, 80))
        sock.listen(16)
        self.server = http.server.ThreadingHTTPServer((IMDS, 80), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.socket.close()


def metadata_tree(i):
    """What EC2 serves for an instance with one interface in a default VPC
    (the keys cloud-init reads; per API version, the same here)."""
    mac = i["mac"]
    iface = {
        "device-number": "0",
        "interface-id": "eni-0a1b2c3d4e5f60718",
        "mac": mac,
        "local-hostname": i["hostname"],
        "local-ipv4s": i["ipv4"],
        "owner-id": "111122223333",
        "security-group-ids": "sg-0a1b2c3d4e5f60718",
        "subnet-id": "subnet-0a1b2c3d4e5f60718",
        "subnet-ipv4-cidr-block": i["subnet"],
        "vpc-id": "vpc-0a1b2c3d4e5f60718",
        "vpc-ipv4-cidr-block": i["vpc"],
        "vpc-ipv4-cidr-blocks": i["vpc"],
    }
    meta = {
        "ami-id": "ami-0a1b2c3d4e5f60718",
        "ami-launch-index": "0",
        "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
        "hostname": i["hostname"],
        "instance-action": "none",
        "instance-id": i["instance_id"],
        "instance-life-cycle": "on-demand",
        "instance-type": "t3.micro",
        "local-hostname": i["hostname"],
        "local-ipv4": i["ipv4"],
        "mac": mac,
        "network": {"interfaces": {"macs": {mac: iface}}},
        "placement": {
            "availability-zone": "us-east-1a",
            "availability-zone-id": "use1-az1",
            "region": "us-east-1",
        },
        "reservation-id": "r-0a1b2c3d4e5f60718",
        "security-groups": "nowd",
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    document = {
        "accountId": "111122223333",
        "architecture": "x86_64",
        "availabilityZone": "us-east-1a",
        "imageId": "ami-0a1b2c3d4e5f60718",
        "instanceId": i["instance_id"],
        "instanceType": "t3.micro",
        "privateIp": i["ipv4"],
        "region": "us-east-1",
        "version": "2017-09-30",
        "pendingTime": "2026-12-01T00:00:00Z",
    }
    return {"meta-data": meta, "dynamic": {"instance-identity": {"document": json.dumps(document)}}}


class Machine:
    """The image booted by qemu in `netns`: an NVMe disk made from `root`,
    serial console to console.log, a monitor socket, and (test-only, added
    after the image was provisioned) a root shell on the second serial port."""

    def __init__(self, netns, root, work, mac, rtc_offset_s=0, smbios_uuid=None):
        self.netns, self.work, self.mac = netns, Path(work), mac
        self.work.mkdir(parents=True, exist_ok=True)
        self.console = self.work / "console.log"
        self.monitor_path = self.work / "monitor.sock"
        self.shell_path = self.work / "shell.sock"
        disk = self.work / "disk.raw"
        boot = Path(root) / "boot"
        kernel = sorted(boot.glob("vmlinuz-*"))[-1]
        initrd = sorted(boot.glob("initrd.img-*"))[-1]
        for f in (kernel, initrd):
            shutil.copy(f, self.work / f.name)
        with open(disk, "wb") as f:
            f.truncate(3 << 30)
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(disk)], check=True
        )
        rtc = "base=utc"
        if rtc_offset_s:
            base = time.gmtime(time.time() + rtc_offset_s)
            rtc = "base=" + time.strftime("%Y-%m-%dT%H:%M:%S", base)
        uuid = smbios_uuid or "ec2" + secrets.token_hex(16)[3:]
        uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
        # Debian's AMI boots with console=tty0 console=ttyS0,115200 (the
        # second is what get-console-output returns) and GRUB's `ro`. The
        # root is on NVMe, as EBS volumes are on Nitro instances (t3).
        argv = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "1024",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-kernel",
            str(self.work / kernel.name),
            "-initrd",
            str(self.work / initrd.name),
            "-append",
            "root=LABEL=root ro console=tty0 console=ttyS0,115200 panic=-1",
            "-drive",
            f"file={disk},format=raw,if=none,id=root,cache=unsafe",
            "-device",
            "nvme,drive=root,serial=vol0123456789abcdef0",
            # The guest's clock runs on VM time: `stop` leaves it behind.
            "-rtc",
            f"{rtc},clock=vm",
            # What ds-identify and cloud-init take for EC2 (DMI vendor and a
            # UUID starting with ec2, as on Nitro).
            "-smbios",
            f"type=1,manufacturer=Amazon EC2,product=t3.micro,uuid={uuid}",
            "-netdev",
            "user,id=n0,net=172.31.0.0/20,host=172.31.0.1,dhcpstart=172.31.9.50,"
            "hostfwd=tcp:127.0.0.1:80-:80",
            "-device",
            f"virtio-net-pci,netdev=n0,mac={mac}",
            "-serial",
            f"file:{self.console}",
            "-chardev",
            f"socket,id=shell,path={self.shell_path},server=on,wait=off",
            "-serial",
            "chardev:shell",
            "-monitor",
            f"unix:{self.monitor_path},server,nowait",
        ]
        self.argv = argv
        self.started = self.proc = None
        self._shell = None
        self._marker = 0

    def start(self):
        """Starts qemu. Apart from __init__ (the disk is made there), so that a
        test booting two machines makes both disks first: mkfs must not take
        the CPU from a boot that is being timed."""
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.netns.command(*self.argv),
            stdin=subprocess.DEVNULL,
            stdout=open(self.work / "qemu.log", "wb"),  # noqa: SIM115 - qemu's, for its life
            stderr=subprocess.STDOUT,
        )

    def since_start(self):
        return time.monotonic() - self.started

    def monitor(self, command):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.monitor_path))
            s.recv(4096)  # the banner
            s.sendall(command.encode() + b"\n")
            time.sleep(0.2)
            return s.recv(4096).decode(errors="replace")

    def sh(self, command, timeout=30):
        """Runs `command` as root in the guest; returns (exit status, output)."""
        deadline = time.monotonic() + timeout
        if self._shell is None:
            self._shell = socket.socket(socket.AF_UNIX)
            self._shell.connect(str(self.shell_path))
        self._marker += 1
        end = f"__nowd_test_{self._marker}__"
        self._shell.sendall(f"{command}\nprintf '\\n{end} %s\\n' $?\n".encode())
        buf = b""
        while (m := re.search(rf"\n{end} (\d+)\n".encode(), buf)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"guest command did not finish in {timeout} s: {command}")
            self._shell.settimeout(left)
            chunk = self._shell.recv(65536)
            if not chunk:
                raise ConnectionError("guest shell closed")
            buf += chunk
        return int(m.group(1)), buf[: m.start()].decode(errors="replace")

    def http(self, path, json_body=False, timeout=3):
        """GET over the forwarded port: (status, body text, send ns, receive ns)."""
        s = self.netns.socket(socket.AF_INET, socket.SOCK_STREAM)
        with s:
            s.settimeout(timeout)
            s.connect(("127.0.0.1", 80))
            accept = "Accept: application/json\r\n" if json_body else ""
            sent = time.time_ns()
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: nowd\r\n{accept}Connection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            received = time.time_ns()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise ConnectionError(f"no HTTP answer: {data[:80]!r}")
        return int(head[9:12]), body.decode(), sent, received

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.monitor("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._shell:
            self._shell.close()
