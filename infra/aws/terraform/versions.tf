terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ "app" = var.name }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  # zipfleet writes only under this prefix of the bucket: zips/, specs/ and cache/.
  prefix = trim(var.store_prefix, "/")
  store  = "s3://${aws_s3_bucket.store.bucket}/${local.prefix}"
}
