# infra/check.sh copies this into a copy of infra/aws/terraform (as tests/) and runs
# `terraform test -json -verbose` offline: Terraform evaluates the whole module with the
# variables' defaults against a mock AWS provider (no credentials, no network), as an apply
# would, and prints the resulting state as JSON. infra/check/lanes_check.py and
# retention_check.py read that state: every value there is Terraform's own evaluation of
# the module (counts, dynamic blocks, jsonencode, locals), not a reading of its source.
#
# The mock provider invents a random string for every computed attribute; the few that the
# AWS provider validates as ARNs get a well-formed one here. Queue ARNs stay random and
# distinct, which is what lets the checks tell which queue an IAM statement names.
mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::111122223333:role/mock"
    }
  }
  mock_resource "aws_appautoscaling_policy" {
    defaults = {
      arn = "arn:aws:autoscaling:eu-west-1:111122223333:scalingPolicy:00000000-0000-0000-0000-000000000000:resource/ecs/service/zipfleet/zipfleet-worker:policyName/mock"
    }
  }
  mock_resource "aws_lb" {
    defaults = {
      arn = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/app/mock/0123456789abcdef"
    }
  }
  mock_resource "aws_lb_target_group" {
    defaults = {
      arn = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/mock/0123456789abcdef"
    }
  }
}

# Only the variables without a default (what only the operator can know).
variables {
  vpc_id                   = "vpc-0123456789abcdef0"
  private_subnet_ids       = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  load_balancer_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  alb_ingress_cidrs        = ["10.0.0.0/16"]
  certificate_arn          = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
  image                    = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/zipfleet:0.1.0"
  api_token_secret_arn     = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:zipfleet-api-token"
  bucket_name              = "zipfleet-example-bucket"
}

run "defaults" {
  command = apply
}
