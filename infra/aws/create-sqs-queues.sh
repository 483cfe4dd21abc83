#!/usr/bin/env bash
# Create zipfleet's three SQS queues with the dead-letter wiring, for
# deployments where infrastructure owns the queues (ZIPFLEET_CREATE_QUEUES=false).
# zipfleet creates the same queues itself at start when ZIPFLEET_CREATE_QUEUES=true.
#
#   infra/aws/create-sqs-queues.sh [MAX_DELIVERIES] [VISIBILITY_SECONDS]
#
# Uses the AWS CLI (`python3 -m pip install awscli`) with its usual
# configuration; for moto's test server set AWS_ENDPOINT_URL_SQS=http://127.0.0.1:5055.
# Queue names: ZIPFLEET_JOBS_QUEUE, ZIPFLEET_COMPLETED_QUEUE,
# ZIPFLEET_DEAD_LETTER_QUEUE (defaults zipfleet-jobs, zipfleet-completed, zipfleet-jobs-dlq).
set -euo pipefail
max_deliveries="${1:-5}"
visibility="${2:-60}"
jobs="${ZIPFLEET_JOBS_QUEUE:-zipfleet-jobs}"
completed="${ZIPFLEET_COMPLETED_QUEUE:-zipfleet-completed}"
dlq="${ZIPFLEET_DEAD_LETTER_QUEUE:-zipfleet-jobs-dlq}"
# The AWS CLI v1 reads AWS_DEFAULT_REGION; the SDKs (and zipfleet) read AWS_REGION.
[ -n "${AWS_REGION:-}" ] && export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
endpoint=()
[ -n "${AWS_ENDPOINT_URL_SQS:-}" ] && endpoint=(--endpoint-url "$AWS_ENDPOINT_URL_SQS")

dlq_url=$(aws "${endpoint[@]}" sqs create-queue --queue-name "$dlq" \
  --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
dlq_arn=$(aws "${endpoint[@]}" sqs get-queue-attributes --queue-url "$dlq_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
aws "${endpoint[@]}" sqs create-queue --queue-name "$completed" --query QueueUrl --output text
redrive="{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"$max_deliveries\"}"
attributes=$(python3 -c 'import json,sys; print(json.dumps({"RedrivePolicy": sys.argv[1], "VisibilityTimeout": sys.argv[2]}))' "$redrive" "$visibility")
aws "${endpoint[@]}" sqs create-queue --queue-name "$jobs" --attributes "$attributes" --query QueueUrl --output text
echo "$dlq_url"
