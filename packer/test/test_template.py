"""The nowd AMI template says what the README promises.

Packer itself (Debian's 1.6.6 here) cannot validate a template with
required_plugins or imds_support, so the settings that matter are checked on
the parsed HCL instead.
"""

import re
from pathlib import Path

import hcl2
import pytest

PACKER = Path(__file__).resolve().parent.parent
STEPS = ["install", "configure", "harden", "cleanup", "validate"]


def load(name):
    with open(PACKER / name) as f:
        return hcl2.load(f)


@pytest.fixture(scope="module")
def variables():
    out = {}
    for block in load("variables.pkr.hcl")["variable"]:
        out.update(block)
    return out


@pytest.fixture(scope="module")
def template():
    return load("nowd.pkr.hcl")


@pytest.fixture(scope="module")
def source(template):
    sources = template["source"]
    assert len(sources) == 1, "one source"
    ebs = sources[0]["amazon-ebs"]
    assert list(ebs) == ["nowd"]
    return ebs["nowd"]


@pytest.fixture(scope="module")
def build(template):
    assert len(template["build"]) == 1, "one build"
    return template["build"][0]


def resolve(value, variables):
    """A "${var.x}" value as the variable's default."""
    m = re.fullmatch(r"\$\{var\.(\w+)\}", value) if isinstance(value, str) else None
    return variables[m.group(1)]["default"] if m else value


def provisioners(build, kind):
    return [p[kind] for p in build["provisioner"] if kind in p]


def test_required_plugins_amazon_1x():
    packer = load("variables.pkr.hcl")["packer"][0]
    assert re.match(r">=\s*1\.1\d", packer["required_version"])
    amazon = packer["required_plugins"][0]["amazon"]
    assert amazon["source"] == "github.com/hashicorp/amazon"
    assert re.search(r">=\s*1\.", amazon["version"])
    assert re.search(r"<\s*2\.0", amazon["version"])


def test_every_variable_is_described_and_has_a_default(variables):
    for name in ["region", "instance_type", "ami_name_prefix", "version", "subnet_id", "vpc_id"]:
        assert name in variables
    for name, v in variables.items():
        assert v.get("description", "").strip(), f"{name} has no description"
        assert "default" in v, f"{name} has no default"
        assert "type" in v, f"{name} has no type"


def test_source_ami_is_official_debian_13(source, variables):
    f = source["source_ami_filter"][0]
    assert [resolve(o, variables) for o in f["owners"]] == ["136693071363"]
    assert resolve(f["filters"]["name"], variables) == "debian-13-amd64-*"
    assert f["filters"]["architecture"] == "x86_64"
    assert f["most_recent"] is True


def test_imds_v2_and_encryption(source):
    assert source["imds_support"] == "v2.0"
    assert source["encrypt_boot"] is True
    meta = source["metadata_options"][0]
    assert meta["http_tokens"] == "required"
    assert meta["http_endpoint"] == "enabled"
    assert meta["http_put_response_hop_limit"] == 1


def test_build_instance_reachable_only_from_the_builder(source, variables):
    assert source["temporary_security_group_source_public_ip"] is True
    assert "security_group_id" not in source and "security_group_ids" not in source
    assert resolve(source["ssh_username"], variables) == "admin"


def test_tags(source):
    tags = source["tags"]
    for needle in ["local.tags", "SourceAMI", "{{ .SourceAMI }}", "BuildTime"]:
        assert needle in tags
    local_tags = load("nowd.pkr.hcl")["locals"][0]["tags"]
    for needle in ['"Name"', '"Version"', "var.version"]:
        assert needle in local_tags


def test_binary_and_unit_are_uploaded_from_the_repository(build, template):
    local = template["locals"][0]
    assert local["binary"] == "${path.root}/../target/x86_64-unknown-linux-musl/release/nowd"
    files = provisioners(build, "file")
    sources = [s for f in files for s in f.get("sources", [f.get("source")])]
    assert "${local.binary}" in sources
    assert "${path.root}/../systemd/nowd.service" in sources
    assert "${path.root}/files/" in sources
    for rel in ["systemd/nowd.service", "packer/files/etc/chrony/chrony.conf"]:
        assert (PACKER.parent / rel).is_file()


def test_scripts_exist_and_run_in_order(build):
    shells = [s for s in provisioners(build, "shell") if "scripts" in s]
    assert len(shells) == 1
    scripts = shells[0]["scripts"]
    assert [Path(s).stem for s in scripts] == STEPS
    for s in scripts:
        assert s.startswith("${path.root}/scripts/")
        path = PACKER / s.removeprefix("${path.root}/")
        assert path.is_file(), path
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in text
    # Root, with the staging directory the file provisioners upload to.
    assert "sudo" in shells[0]["execute_command"]
    assert shells[0]["environment_vars"] == ["NOWD_STAGING=${local.staging}"]
    # The uploads come before the scripts.
    kinds = [next(iter(p)) for p in build["provisioner"]]
    assert kinds.index("file") < len(kinds) - 1 and kinds[-1] == "shell"


def test_manifest_records_the_ami(build):
    pps = build["post-processor"]
    manifests = [p["manifest"] for p in pps if "manifest" in p]
    assert len(manifests) == 1
    assert manifests[0]["output"] == "${path.root}/manifest.json"
    ignore = (PACKER / ".gitignore").read_text().split()
    assert "/manifest.json" in ignore


def test_harden_and_validate_name_the_same_interpreters():
    """harden.sh purges by this pattern and validate.sh fails the build by it."""
    patterns = [
        re.findall(
            r"^interpreter_packages='([^']+)'$", (PACKER / "scripts" / f).read_text(), re.MULTILINE
        )
        for f in ("harden.sh", "validate.sh")
    ]
    assert patterns[0] and patterns[0] == patterns[1], patterns
    for name in ("python3", "python3.13", "python3-yaml", "libpython3.13-minimal", "perl", "ruby"):
        assert re.match(patterns[0][0], name), name
    for name in ("perl-base", "systemd", "chrony", "lynis"):
        assert not re.match(patterns[0][0], name), name
