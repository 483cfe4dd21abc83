# ECS on Fargate: the API behind an ALB, the workers scaled on the jobs backlog of every
# lane (autoscaling.tf). Both run the same image with a read-only root filesystem, as the image's
# unprivileged user.

resource "aws_ecs_cluster" "main" {
  name = var.name

  # Container Insights publishes RunningTaskCount, the denominator of backlog per task.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

locals {
  redis_url = "redis://${aws_elasticache_replication_group.status.primary_endpoint_address}:6379/0"

  common_environment = [
    { name = "ZIPFLEET_BROKER", value = "sqs://" },
    { name = "ZIPFLEET_JOBS_QUEUE", value = aws_sqs_queue.jobs.url },
    { name = "ZIPFLEET_COMPLETED_QUEUE", value = aws_sqs_queue.completed.url },
    { name = "ZIPFLEET_DEAD_LETTER_QUEUE", value = aws_sqs_queue.dead_letter.url },
    { name = "ZIPFLEET_CREATE_QUEUES", value = "false" },
    # Lane n >= 1 of the jobs queue is its URL + "-laneN": the queues of sqs.tf.
    { name = "ZIPFLEET_FAIR_LANES", value = tostring(var.fair_lanes) },
    { name = "ZIPFLEET_MAX_QUEUED_PER_TENANT", value = tostring(var.max_queued_per_tenant) },
    { name = "ZIPFLEET_ERASURE_TOMBSTONE_TTL", value = var.erasure_tombstone_ttl },
    { name = "ZIPFLEET_MAX_DELIVERIES", value = tostring(var.max_deliveries) },
    { name = "ZIPFLEET_SQS_VISIBILITY_TIMEOUT", value = "${var.visibility_timeout_seconds}s" },
    { name = "ZIPFLEET_STORE", value = local.store },
    { name = "ZIPFLEET_STATUS", value = local.redis_url },
    { name = "ZIPFLEET_LOG_FORMAT", value = "json" },
    { name = "AWS_REGION", value = var.region },
  ]

  # The image has bash but no curl: a tiny HTTP/1.0 GET over bash's /dev/tcp.
  worker_health_command = "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"
}

resource "aws_ecs_task_definition" "api" {
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.api.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "api"
    image                  = var.image
    essential              = true
    command                = ["zipfleet-api"]
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = 8080, protocol = "tcp" }]
    environment = concat(local.common_environment, [
      { name = "ZIPFLEET_LISTEN", value = "0.0.0.0:8080" },
    ])
    secrets     = [{ name = "ZIPFLEET_API_TOKEN", valueFrom = var.api_token_secret_arn }]
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters = {
      capabilities = { drop = ["ALL"] }
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.api.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "api"
      }
    }
  }])
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # The spool (downloads and zips) on the task's ephemeral storage, since the root
  # filesystem is read-only.
  ephemeral_storage {
    size_in_gib = var.worker_ephemeral_storage_gib
  }

  volume {
    name = "spool"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "worker"
    image                  = var.image
    essential              = true
    command                = ["zipfleet-worker"]
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    # SIGTERM -> jobs get ZIPFLEET_SHUTDOWN_GRACE, then are handed back; SIGKILL after this.
    stopTimeout = var.worker_shutdown_grace_seconds + 10
    environment = concat(local.common_environment, [
      { name = "ZIPFLEET_WORKER_LISTEN", value = "0.0.0.0:9090" },
      { name = "ZIPFLEET_CONCURRENCY", value = tostring(var.worker_concurrency) },
      { name = "ZIPFLEET_MEMORY_BUDGET", value = "${var.worker_memory - var.worker_memory_headroom}MiB" },
      { name = "ZIPFLEET_SHUTDOWN_GRACE", value = "${var.worker_shutdown_grace_seconds}s" },
      { name = "ZIPFLEET_WORK_DIR", value = "/var/spool/zipfleet" },
    ])
    mountPoints = [
      { sourceVolume = "spool", containerPath = "/var/spool/zipfleet", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    linuxParameters = {
      capabilities = { drop = ["ALL"] }
    }
    healthCheck = {
      command     = ["CMD", "bash", "-c", local.worker_health_command]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.worker.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "worker"
      }
    }
  }])
}

resource "aws_ecs_service" "api" {
  name                   = "${var.name}-api"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.api.arn
  desired_count          = var.api_desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.api.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = 8080
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "worker" {
  name                   = "${var.name}-worker"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.worker.arn
  desired_count          = var.worker_min_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  # New workers start before old ones stop; old ones still running a job are protected
  # (task scale-in protection) and finish it first.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Application Auto Scaling owns the worker count.
  lifecycle {
    ignore_changes = [desired_count]
  }
}
