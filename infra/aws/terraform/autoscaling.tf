# Worker autoscaling on backlog per task, in plain words:
#
# - Target tracking keeps (visible jobs in every lane) / (running worker tasks) near
#   worker_backlog_per_task_target (2): with 8 jobs waiting and 2 tasks the metric is 4, so
#   Application Auto Scaling doubles the tasks. Only visible (waiting) messages are counted:
#   the jobs already running are safe because each worker turns on its task's scale-in
#   protection while it runs a job (ECS_AGENT_URI), so scale-in stops only idle tasks.
# - Every lane counts (fair share spreads the jobs over fair_lanes queues, sqs.tf): one
#   CloudWatch metric per lane, `waiting` = SUM([lane0, lane1, ...]). SUM over the array adds
#   what each lane reports in a minute, so a lane without datapoints (SQS publishes no
#   metrics for a queue idle for 6 hours) adds nothing instead of blanking the total, as
#   `lane0 + lane1` would. infra/check/lanes_check.py proves the sum names every lane queue
#   once, in this policy and in the "start the first task" alarm.
# - Target tracking cannot start from zero tasks (backlog / 0 has no value, and it scales
#   in proportion to the current count), so a step-scaling alarm adds the first task when a
#   job is waiting and no task runs. From there target tracking takes over.
# - Scale-in waits 5 minutes (scale_in_cooldown) after a scale-in, and target tracking
#   removes tasks only after its low alarm has held for 15 minutes: a class re-trains in
#   waves minutes apart, and a job takes ~5-60 s, so workers stay for the next wave.

locals {
  worker_resource_id = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.worker.name}"
  # The jobs waiting in every lane, from the metrics lane0 .. laneN-1 below.
  waiting_expression = "SUM([${join(", ", [for n in range(var.fair_lanes) : "lane${n}"])}])"
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = local.worker_resource_id
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_min_count
  max_capacity       = var.worker_max_count
}

resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${var.name}-worker-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.worker_backlog_per_task_target
    scale_out_cooldown = 30
    scale_in_cooldown  = 300

    customized_metric_specification {
      dynamic "metrics" {
        for_each = local.lane_queues
        content {
          id          = "lane${metrics.key}"
          label       = "Jobs waiting in lane ${metrics.key} (${metrics.value.name})"
          return_data = false
          metric_stat {
            stat = "Sum"
            metric {
              namespace   = "AWS/SQS"
              metric_name = "ApproximateNumberOfMessagesVisible"
              dimensions {
                name  = "QueueName"
                value = metrics.value.name
              }
            }
          }
        }
      }

      metrics {
        id          = "waiting"
        label       = "Jobs waiting in every lane"
        expression  = local.waiting_expression
        return_data = false
      }

      metrics {
        id          = "tasks"
        label       = "Running worker tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Jobs waiting per running worker task"
        expression  = "waiting / tasks"
        return_data = true
      }
    }
  }
}

resource "aws_appautoscaling_policy" "worker_from_zero" {
  name               = "${var.name}-worker-from-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 60
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

# In alarm when at least one job waits in any lane and no worker task runs (a missing task
# count, as when the service has had no task for a while, counts as zero).
resource "aws_cloudwatch_metric_alarm" "worker_from_zero" {
  alarm_name          = "${var.name}-jobs-waiting-no-worker"
  alarm_description   = "Jobs are waiting and no zipfleet worker runs: start one"
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.worker_from_zero.arn]

  metric_query {
    id          = "waiting_without_worker"
    label       = "Jobs waiting with no worker"
    expression  = "IF(waiting > 0 AND FILL(tasks, 0) < 1, 1, 0)"
    return_data = true
  }

  metric_query {
    id          = "waiting"
    label       = "Jobs waiting in every lane"
    expression  = local.waiting_expression
    return_data = false
  }

  dynamic "metric_query" {
    for_each = local.lane_queues
    content {
      id = "lane${metric_query.key}"
      metric {
        namespace   = "AWS/SQS"
        metric_name = "ApproximateNumberOfMessagesVisible"
        period      = 60
        stat        = "Maximum"
        dimensions = {
          QueueName = metric_query.value.name
        }
      }
    }
  }

  metric_query {
    id = "tasks"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        ClusterName = aws_ecs_cluster.main.name
        ServiceName = aws_ecs_service.worker.name
      }
    }
  }
}

# Not a scaling input, an operator's: something ends in the dead-letter queue.
resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "Jobs were dead-lettered after ${var.max_deliveries} deliveries (zipfleet dlq list)"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  period              = 300
  statistic           = "Maximum"
  dimensions = {
    QueueName = aws_sqs_queue.dead_letter.name
  }
}
