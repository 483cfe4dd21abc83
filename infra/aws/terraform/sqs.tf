# The three queues of contract's SQS broker, owned here (the workers and API run with
# ZIPFLEET_CREATE_QUEUES=false). Server-side encryption with SQS-managed keys.

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

resource "aws_sqs_queue" "jobs" {
  name                      = "${var.name}-jobs"
  message_retention_seconds = var.jobs_retention_seconds
  # A worker keeps a running job invisible by renewing this every third of it (heartbeat);
  # a crashed worker's job comes back after at most one timeout.
  visibility_timeout_seconds = var.visibility_timeout_seconds
  # Long polling: idle workers wait on the queue instead of hammering it.
  receive_wait_time_seconds = 20
  sqs_managed_sse_enabled   = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_deliveries
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}

# Completion messages (status documents) for the web backend; zipfleet only publishes here.
resource "aws_sqs_queue" "completed" {
  name                      = "${var.name}-completed"
  message_retention_seconds = var.jobs_retention_seconds
  sqs_managed_sse_enabled   = true
}
