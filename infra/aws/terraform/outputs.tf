output "api_url" {
  description = "Base URL of the API (ZIPFLEET_API_URL for the CLI and the web backend's client)."
  value       = "https://${aws_lb.api.dns_name}"
}

output "jobs_queue_url" {
  description = "URL of the jobs queue (ZIPFLEET_JOBS_QUEUE), lane 0 of fair share."
  value       = aws_sqs_queue.jobs.url
}

output "lane_queue_urls" {
  description = "URLs of every lane of the jobs queue, lane 0 (the jobs queue) first: what the workers take from and autoscaling sums."
  value       = [for q in local.lane_queues : q.url]
}

output "completed_queue_url" {
  description = "URL of the completed queue, which the web backend consumes (deduplicating by job_id)."
  value       = aws_sqs_queue.completed.url
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue (ZIPFLEET_DEAD_LETTER_QUEUE)."
  value       = aws_sqs_queue.dead_letter.url
}

output "store" {
  description = "ZIPFLEET_STORE value: the bucket and prefix zipfleet writes under."
  value       = local.store
}

output "bucket_name" {
  description = "Name of the store bucket."
  value       = aws_s3_bucket.store.bucket
}

output "status_url" {
  description = "ZIPFLEET_STATUS value: the Redis primary endpoint."
  value       = local.redis_url
}

output "cluster_name" {
  description = "ECS cluster running the API and worker services."
  value       = aws_ecs_cluster.main.name
}

output "api_task_role_arn" {
  description = "IAM role of the API tasks."
  value       = aws_iam_role.api.arn
}

output "worker_task_role_arn" {
  description = "IAM role of the worker tasks."
  value       = aws_iam_role.worker.arn
}

output "worker_memory_budget" {
  description = "ZIPFLEET_MEMORY_BUDGET the workers run with (task memory minus headroom)."
  value       = "${var.worker_memory - var.worker_memory_headroom}MiB"
}
