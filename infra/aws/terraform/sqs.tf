# The queues of the contract's SQS broker, owned here (the workers and API run with
# ZIPFLEET_CREATE_QUEUES=false). Server-side encryption with SQS-managed keys.
#
# Fair share (ZIPFLEET_FAIR_LANES = var.fair_lanes): the jobs queue is lane 0 and lanes
# 1..N-1 are queues named after it (`zipfleet-jobs-lane1` ...). Every lane is the same
# queue: same visibility timeout (the workers' heartbeat), retention, long polling and
# dead-letter wiring into the one dead-letter queue with the same delivery limit.

locals {
  # Lane n's settings, n = 0..fair_lanes-1; lane 0 keeps the jobs queue's name.
  lane_names = [for n in range(var.fair_lanes) : n == 0 ? "${var.name}-jobs" : "${var.name}-jobs-lane${n}"]
  # Every lane queue in lane order (lane 0 first): what autoscaling sums and IAM grants.
  lane_queues = concat([aws_sqs_queue.jobs], aws_sqs_queue.lane)
  lane_arns   = [for q in local.lane_queues : q.arn]
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-jobs-dlq"
  message_retention_seconds = var.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = true

  lifecycle {
    precondition {
      condition     = var.dead_letter_retention_seconds > var.jobs_retention_seconds
      error_message = "dead_letter_retention_seconds must exceed jobs_retention_seconds (a dead-lettered message keeps its original enqueue time)."
    }
  }
}

# Lane 0.
resource "aws_sqs_queue" "jobs" {
  name                      = local.lane_names[0]
  message_retention_seconds = var.jobs_retention_seconds
  # A worker keeps a running job invisible by renewing this every third of it (heartbeat);
  # a crashed worker's job comes back after at most one timeout.
  visibility_timeout_seconds = var.visibility_timeout_seconds
  # Long polling for the API's and tools' receives; the workers take one message at a time
  # from the lane the fair-share ledger names, sweeping every lane every ~2 s.
  receive_wait_time_seconds = 20
  sqs_managed_sse_enabled   = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_deliveries
  })
}

# Lanes 1..fair_lanes-1, exactly like lane 0.
resource "aws_sqs_queue" "lane" {
  count = var.fair_lanes - 1

  name                       = local.lane_names[count.index + 1]
  message_retention_seconds  = var.jobs_retention_seconds
  visibility_timeout_seconds = var.visibility_timeout_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_deliveries
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = local.lane_arns
  })
}

# Completion messages (status documents) for the web backend; zipfleet only publishes here.
resource "aws_sqs_queue" "completed" {
  name                      = "${var.name}-completed"
  message_retention_seconds = var.jobs_retention_seconds
  sqs_managed_sse_enabled   = true
}
