# The nowd AMI: Debian 13 (trixie), hardened, serving GET /now on port 80.
# Build the binary first (`make build` at the top of the repository), then:
#   packer init packer/ && packer build packer/

locals {
  build_time = formatdate("YYYYMMDD-hhmmss", timestamp())
  binary     = "${path.root}/../target/x86_64-unknown-linux-musl/release/nowd"
  staging    = "/tmp/nowd-image"
  # Deprecated AMIs drop out of other accounts' listings and are hidden
  # from a filter's "most recent"; launching one by id (the stack's
  # ImageId, an instance refresh's rollback) still works
  # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deprecate.html).
  deprecate_at = var.deprecate_after_days > 0 ? timeadd(timestamp(), "${var.deprecate_after_days * 24}h") : ""
  tags = merge(var.tags, {
    Name    = "${var.ami_name_prefix}-${var.version}"
    Service = "nowd"
    Version = var.version
  })
}

source "amazon-ebs" "nowd" {
  region        = var.region
  instance_type = var.instance_type
  vpc_id        = var.vpc_id
  subnet_id     = var.subnet_id

  associate_public_ip_address = var.associate_public_ip_address

  source_ami_filter {
    owners      = [var.source_ami_owner]
    most_recent = true
    filters = {
      name                = var.source_ami_name_filter
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  ami_name        = "${var.ami_name_prefix}-${var.version}-${local.build_time}"
  ami_description = "nowd ${var.version}: the current time on GET /now, port 80 (Debian 13)"
  ami_regions     = var.ami_regions
  ami_users       = var.ami_users
  ena_support     = true
  sriov_support   = true
  deprecate_at    = local.deprecate_at

  # Instances launched from the AMI get IMDSv2 only.
  imds_support = "v2.0"

  # The build instance too: IMDSv2 only, no metadata from inside containers.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # Encrypted root volume in the AMI (and its copies).
  encrypt_boot = true
  kms_key_id   = var.kms_key_id

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  # A temporary security group that admits SSH from this builder's public IP only.
  temporary_security_group_source_public_ip = true

  communicator = "ssh"
  ssh_username = var.ssh_username
  ssh_timeout  = "10m"

  tags = merge(local.tags, {
    SourceAMI     = "{{ .SourceAMI }}"
    SourceAMIName = "{{ .SourceAMIName }}"
    BuildTime     = local.build_time
  })
  snapshot_tags = merge(local.tags, {
    SourceAMI = "{{ .SourceAMI }}"
    BuildTime = local.build_time
  })
  run_tags = merge(local.tags, {
    Name = "${var.ami_name_prefix}-build"
  })
}

build {
  name    = "nowd"
  sources = ["source.amazon-ebs.nowd"]

  # Staging directory for the uploads below (the file provisioner needs it).
  provisioner "shell" {
    inline = ["mkdir -p ${local.staging}/files"]
  }

  # Debian's current packages, security fixes included: Debian publishes
  # new AMIs at point releases, and the weekly rebuild must not wait for one.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    inline = [
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update -qq",
      "apt-get full-upgrade -y -qq -o Dpkg::Options::=--force-confold",
    ]
  }

  provisioner "file" {
    sources     = [local.binary, "${path.root}/../systemd/nowd.service"]
    destination = "${local.staging}/"
  }

  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "${local.staging}/files"
  }

  # One script per step, each run as root; the boot test runs the same ones.
  provisioner "shell" {
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = ["NOWD_STAGING=${local.staging}"]
    scripts = [
      "${path.root}/scripts/install.sh",
      "${path.root}/scripts/configure.sh",
      "${path.root}/scripts/harden.sh",
      "${path.root}/scripts/cleanup.sh",
      "${path.root}/scripts/validate.sh",
    ]
  }

  # What the image contains, every package and version as shipped, printed
  # between markers: cleanup.sh removed SSH, so nothing can be downloaded
  # now. tools/deploy bake keeps these lines as packer/packages.txt.
  provisioner "shell" {
    inline = [
      "echo NOWD-PACKAGES-BEGIN",
      "dpkg-query -W -f='$${Package}=$${Version} $${Architecture}\\n'",
      "echo NOWD-PACKAGES-END",
    ]
  }

  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      version         = var.version
      build_time      = local.build_time
      source_ami      = build.SourceAMI
      source_ami_name = build.SourceAMIName
      deprecate_at    = local.deprecate_at
      packages        = "packer/packages.txt, kept by tools/deploy bake (the pipeline's build artifact)"
    }
  }
}
