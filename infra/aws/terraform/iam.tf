# Least-privilege roles. The execution role (ECS itself: pull the image, write logs, read
# the API token) is separate from each component's task role (what the code may do).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account}:*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# --- execution role --------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadApiToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.api_token_secret_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-api-token"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# --- API task role ---------------------------------------------------------------------

data "aws_iam_policy_document" "api" {
  # Queue depths of every lane (the queue metrics, `queue.jobs_ahead`) and the DLQ.
  statement {
    sid = "ResolveQueues"
    actions = [
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
    ]
    resources = concat(local.lane_arns, [aws_sqs_queue.completed.arn, aws_sqs_queue.dead_letter.arn])
  }

  # Enqueue jobs on the lane of their tenant; dead-letter redrive sends them back to lane 0.
  statement {
    sid       = "EnqueueJobs"
    actions   = ["sqs:SendMessage"]
    resources = local.lane_arns
  }

  # GET /v1/dead-letters peeks (receive, then hand back) and redrive deletes after re-sending.
  statement {
    sid = "ReadDeadLetters"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  # /readyz checks the bucket with HeadBucket, which S3 authorises as ListBucket.
  statement {
    sid       = "CheckBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.store.arn]
  }

  # Large specs travel by claim check.
  statement {
    sid       = "WriteSpecs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.store.arn}/${local.prefix}/specs/*"]
  }

  # Presigned download URLs are signed with this role, so it must be allowed to GET the zips.
  statement {
    sid       = "PresignZips"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.store.arn}/${local.prefix}/zips/*"]
  }

  # DELETE /v1/jobs/{id} and /v1/projects/{id} erase under zipfleet's prefix: the zip (every
  # version, where the bucket keeps versions, and its unfinished multipart uploads), the
  # claim-checked spec and the cache entries derived from the job's pictures.
  statement {
    sid = "EraseJobData"
    actions = [
      "s3:GetObject",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.store.arn}/${local.prefix}/*"]
  }

  statement {
    sid = "FindJobData"
    actions = [
      "s3:ListBucketVersions",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [aws_s3_bucket.store.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix}/*"]
    }
  }
}

resource "aws_iam_role" "api" {
  name               = "${var.name}-api"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "api" {
  name   = "zipfleet-api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

# --- worker task role ------------------------------------------------------------------

locals {
  source_objects = length(var.source_object_arns) > 0 ? var.source_object_arns : ["${aws_s3_bucket.store.arn}/uploads/*"]
}

data "aws_iam_policy_document" "worker" {
  # Take one job at a time from whichever lane fair share names (and sweep them all), renew
  # its visibility while it runs, delete it when done.
  statement {
    sid = "ConsumeJobs"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
    ]
    resources = local.lane_arns
  }

  # Completions to the completed queue, malformed messages straight to the DLQ.
  statement {
    sid = "Publish"
    actions = [
      "sqs:SendMessage",
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.completed.arn, aws_sqs_queue.dead_letter.arn]
  }

  statement {
    sid       = "CheckBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.store.arn]
  }

  # Its own prefix: read specs and cache, write zips and cache (multipart included: the
  # multipart calls are authorised as PutObject, plus abort and list-parts). Delete: a write
  # that raced an erasure (the job's tombstone appeared after it) is undone.
  statement {
    sid = "Store"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.store.arn}/${local.prefix}/*"]
  }

  # `object` image sources: the web backend's uploads, read only.
  statement {
    sid       = "ReadSources"
    actions   = ["s3:GetObject"]
    resources = local.source_objects
  }

  # Task scale-in protection while a job runs: the worker calls the ECS agent's endpoint
  # ($ECS_AGENT_URI/task-protection/v1/state), which calls these APIs with the task role.
  statement {
    sid = "TaskScaleInProtection"
    actions = [
      "ecs:UpdateTaskProtection",
      "ecs:GetTaskProtection",
    ]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account}:task/${aws_ecs_cluster.main.name}/*"]
  }
}

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "zipfleet-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}
