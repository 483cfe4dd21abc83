# Log groups for the API and the workers (JSON lines, ZIPFLEET_LOG_FORMAT=json).

resource "aws_cloudwatch_log_group" "api" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with service keys; at info the logs carry job and image ids only, no secrets (zipfleet redacts tokens, keys and URL signatures)
  #checkov:skip=CKV_AWS_338:Kept log_retention_days (30 by default), not a year: the logs are about children's class projects and are kept no longer than needed to debug
  name              = "/ecs/${var.name}/api"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "worker" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with service keys; at info the logs carry job and image ids only, no secrets (zipfleet redacts tokens, keys and URL signatures)
  #checkov:skip=CKV_AWS_338:Kept log_retention_days (30 by default), not a year: the logs are about children's class projects and are kept no longer than needed to debug
  name              = "/ecs/${var.name}/worker"
  retention_in_days = var.log_retention_days
}
