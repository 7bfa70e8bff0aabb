# Packer settings and every variable of the nowd AMI build.
# Override with -var name=value or a *.auto.pkrvars.hcl file.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0, < 2.0.0"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region the AMI is built (and registered) in."
  default     = "eu-west-1"
}

variable "instance_type" {
  type        = string
  description = "Instance type of the temporary build instance (x86-64: the nowd binary is x86_64-unknown-linux-musl)."
  default     = "t3.small"
}

variable "ami_name_prefix" {
  type        = string
  description = "Prefix of the AMI name; the build time is appended, so every build registers a new AMI."
  default     = "nowd"
}

variable "version" {
  type        = string
  description = "Version of nowd in the image, recorded in the AMI's tags."
  default     = "0.1.0"
}

variable "source_ami_owner" {
  type        = string
  description = "Owner of the base AMI: 136693071363 is the Debian project's official cloud images account."
  default     = "136693071363"
}

variable "source_ami_name_filter" {
  type        = string
  description = "Name filter of the base AMI (Debian 13 trixie, amd64); the most recent match (Debian's newest point or security release) is used."
  default     = "debian-13-amd64-*"
}

variable "deprecate_after_days" {
  type        = number
  description = "Days until the AMI is deprecated; a weekly rebuild leaves about four current ones. 0: never."
  default     = 30
}

variable "ssh_username" {
  type        = string
  description = "Login user of the base AMI (Debian's cloud images use admin)."
  default     = "admin"
}

variable "vpc_id" {
  type        = string
  description = "VPC of the build instance; empty for the region's default VPC."
  default     = ""
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance (needs a public IP on launch, or a route to the builder); empty for a default subnet."
  default     = ""
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the build instance a public IP, so packer can reach it over SSH from outside the VPC."
  default     = true
}

variable "volume_size" {
  type        = number
  description = "Size of the root volume in GiB (the Debian AMI's own is 8)."
  default     = 8
}

variable "kms_key_id" {
  type        = string
  description = "KMS key for the encrypted boot volume; empty for the account's default EBS key (aws/ebs)."
  default     = ""
}

variable "ami_regions" {
  type        = list(string)
  description = "Other regions to copy the AMI to (encrypted with each region's default key)."
  default     = []
}

variable "ami_users" {
  type        = list(string)
  description = "AWS account ids allowed to launch the AMI, besides the owner (needs a KMS key they can use)."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for the AMI, its snapshot and the build instance."
  default     = {}
}
