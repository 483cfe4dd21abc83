# Inputs of zipfleet's AWS root module. Every one has a safe default except where only the
# operator can know the value (network, image, certificate, the API token's secret).

variable "name" {
  description = "Name prefix of every resource (cluster, queues, roles, log groups)."
  type        = string
  default     = "zipfleet"
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network -------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC to run in. Its private subnets need a route to the internet (NAT) or VPC endpoints for ECR, S3, SQS, CloudWatch Logs and Secrets Manager; workers also fetch URL images from the public web, so they need NAT."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more AZs) for the ECS tasks and Redis."
  type        = list(string)
}

variable "load_balancer_subnet_ids" {
  description = "Subnets of the API's load balancer: private ones for an internal ALB (the default: the API is called by the web backend, not by browsers), public ones when alb_internal = false."
  type        = list(string)
}

variable "alb_internal" {
  description = "Whether the API's ALB is internal (reachable only inside the VPC and peered networks)."
  type        = bool
  default     = true
}

variable "alb_ingress_cidrs" {
  description = "CIDR blocks allowed to call the API through the ALB (the web backend's)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the ALB's HTTPS listener."
  type        = string
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket for the ALB's access logs (empty: no access logs)."
  type        = string
  default     = ""
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

# --- image and API ---------------------------------------------------------------------

variable "image" {
  description = "zipfleet image (built from the repository's Dockerfile), pinned by tag or digest, e.g. 111122223333.dkr.ecr.eu-west-1.amazonaws.com/zipfleet:0.1.0."
  type        = string
}

variable "api_token_secret_arn" {
  description = "ARN of an existing Secrets Manager secret whose value is the API bearer token (ZIPFLEET_API_TOKEN). Created outside Terraform so the token never enters the state."
  type        = string
}

variable "api_desired_count" {
  description = "API tasks (stateless; two for availability)."
  type        = number
  default     = 2
}

variable "api_cpu" {
  description = "API task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 256
}

variable "api_memory" {
  description = "API task memory (MiB)."
  type        = number
  default     = 512
}

# --- queues ----------------------------------------------------------------------------

variable "max_deliveries" {
  description = "Receives of a job before SQS moves it to the dead-letter queue (maxReceiveCount; the workers' ZIPFLEET_MAX_DELIVERIES)."
  type        = number
  default     = 5
}

variable "visibility_timeout_seconds" {
  description = "Jobs queue visibility timeout, also the workers' ZIPFLEET_SQS_VISIBILITY_TIMEOUT: a worker renews a running job's visibility every third of it, so a dead worker's job is redelivered after at most this long."
  type        = number
  default     = 60

  validation {
    condition     = var.visibility_timeout_seconds >= 30 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be 30..43200 (a third of it is the heartbeat)."
  }
}

variable "fair_lanes" {
  description = "ZIPFLEET_FAIR_LANES: the jobs queue (lane 0) plus fair_lanes - 1 lane queues named after it (NAME-jobs-lane1 ...). Tenants waiting get a lane of their own while one is free, so a class's 5 jobs do not wait behind another tenant's 300. At most 9: the workers' backlog metric math sums one CloudWatch metric per lane plus the task count, and CloudWatch allows 10 metrics in an alarm's math; SQS's redrive allow policy names at most 10 source queues."
  type        = number
  default     = 8

  validation {
    condition     = var.fair_lanes >= 1 && var.fair_lanes <= 9 && floor(var.fair_lanes) == var.fair_lanes
    error_message = "fair_lanes must be a whole number 1..9."
  }
}

variable "max_queued_per_tenant" {
  description = "ZIPFLEET_MAX_QUEUED_PER_TENANT: jobs one tenant may have queued at once; over it the API answers 429 tenant_quota with Retry-After (other tenants are not affected)."
  type        = number
  default     = 1000
}

variable "erasure_tombstone_ttl" {
  description = "ZIPFLEET_ERASURE_TOMBSTONE_TTL: how long an erased job's id stays marked erased (in Redis), so that no late worker writes its zip, status or cache entries back. Longer than a job can wait in the queues plus its longest run."
  type        = string
  default     = "7d"
}

variable "jobs_retention_seconds" {
  description = "How long an unprocessed job stays in the jobs and completed queues."
  type        = number
  default     = 345600 # 4 days
}

variable "dead_letter_retention_seconds" {
  description = "How long a dead-lettered job is kept for inspection and redrive. Must exceed jobs_retention_seconds: SQS keeps a message's original enqueue time when it moves to the DLQ, so a shorter DLQ retention would delete it on arrival."
  type        = number
  default     = 1209600 # 14 days, the SQS maximum
}

# --- bucket ----------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the bucket for zips, job specs and the cache (globally unique)."
  type        = string
}

variable "store_prefix" {
  description = "Prefix under which zipfleet writes (ZIPFLEET_STORE = s3://BUCKET/PREFIX)."
  type        = string
  default     = "zipfleet"
}

variable "source_object_arns" {
  description = "S3 object ARNs (patterns) the workers may read as `object` image sources: the web backend's uploads, e.g. [\"arn:aws:s3:::my-uploads/uploads/*\"]. Empty: only the store bucket's uploads/ prefix."
  type        = list(string)
  default     = []
}

variable "zip_expiry_days" {
  description = "Days after which zips (PREFIX/zips/) are deleted. They contain children's photos: keep this short; a re-run job rebuilds its zip."
  type        = number
  default     = 7
}

variable "cache_expiry_days" {
  description = "Days after which cache entries (PREFIX/cache/) are deleted: at least the workers' ZIPFLEET_CACHE_TTL (7 days), after which entries are unused anyway."
  type        = number
  default     = 8
}

variable "spec_expiry_days" {
  description = "Days after which large job specs (PREFIX/specs/, claim checks) are deleted: longer than a job can wait in the queues (jobs_retention_seconds)."
  type        = number
  default     = 5
}

variable "bucket_versioning" {
  description = "Enable bucket versioning. Off by default: every object zipfleet writes can be rebuilt (zips by re-running the job, the cache by rendering again), and old versions would keep children's photos past the expiry above. When on, noncurrent versions expire after 1 day."
  type        = bool
  default     = false
}

# --- Redis -----------------------------------------------------------------------------

variable "redis_node_type" {
  description = "ElastiCache node type for the status store."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_snapshot_retention_days" {
  description = "Daily snapshots of the status store kept (0 disables them)."
  type        = number
  default     = 7
}

# --- workers ---------------------------------------------------------------------------

variable "worker_cpu" {
  description = "Worker task CPU units (1024 = 1 vCPU). Decoding is CPU-bound; a worker runs worker_concurrency jobs at once."
  type        = number
  default     = 1024
}

variable "worker_memory" {
  description = "Worker task memory (MiB). The workers' ZIPFLEET_MEMORY_BUDGET is this minus worker_memory_headroom."
  type        = number
  default     = 2048
}

variable "worker_memory_headroom" {
  description = "MiB of the task's memory kept out of ZIPFLEET_MEMORY_BUDGET: allocator slack, socket buffers, the kernel's share (the budget is a peak-RSS target, not a hard cap)."
  type        = number
  default     = 256
}

variable "worker_concurrency" {
  description = "Jobs one worker runs at once (ZIPFLEET_CONCURRENCY)."
  type        = number
  default     = 2
}

variable "worker_shutdown_grace_seconds" {
  description = "ZIPFLEET_SHUTDOWN_GRACE: on SIGTERM running jobs get this long, then are handed back. The container's stopTimeout is this + 10 s; Fargate allows at most 120 s."
  type        = number
  default     = 90

  validation {
    condition     = var.worker_shutdown_grace_seconds >= 5 && var.worker_shutdown_grace_seconds <= 110
    error_message = "worker_shutdown_grace_seconds must be 5..110 (Fargate's stopTimeout limit is 120 s)."
  }
}

variable "worker_ephemeral_storage_gib" {
  description = "Fargate ephemeral storage per worker task (GiB, 21..200): the spool for downloads and zips."
  type        = number
  default     = 30
}

variable "worker_min_count" {
  description = "Fewest worker tasks (0: none while the queue is empty)."
  type        = number
  default     = 0
}

variable "worker_max_count" {
  description = "Most worker tasks."
  type        = number
  default     = 20
}

variable "worker_backlog_per_task_target" {
  description = "Target of the backlog-per-task scaling policy: visible (waiting) jobs, summed over every lane, per running worker. With worker_concurrency jobs running on each task, 2 means a job waits about one job length at most."
  type        = number
  default     = 2
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for the API and worker logs (at info they name jobs and images by id only; URLs and labels appear only at debug)."
  type        = number
  default     = 30
}
