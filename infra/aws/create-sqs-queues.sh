#!/usr/bin/env bash
# Create zipfleet's SQS queues with the dead-letter wiring, for deployments where
# infrastructure owns the queues (ZIPFLEET_CREATE_QUEUES=false): the dead-letter queue, the
# completed queue and the ZIPFLEET_FAIR_LANES lanes of the jobs queue (lane 0 is the jobs
# queue, lane n >= 1 is JOBS-laneN), every lane with the same visibility timeout and the same
# redrive policy into the one dead-letter queue. zipfleet creates the same queues itself at
# start when ZIPFLEET_CREATE_QUEUES=true. Idempotent (create-queue returns an existing queue
# with the same attributes).
#
#   infra/aws/create-sqs-queues.sh [MAX_DELIVERIES] [VISIBILITY_SECONDS]
#
# Uses the AWS CLI (`python3 -m pip install awscli`) with its usual
# configuration; for moto's test server set AWS_ENDPOINT_URL_SQS=http://127.0.0.1:5055.
# Queue names: ZIPFLEET_JOBS_QUEUE, ZIPFLEET_COMPLETED_QUEUE,
# ZIPFLEET_DEAD_LETTER_QUEUE (defaults zipfleet-jobs, zipfleet-completed, zipfleet-jobs-dlq);
# lanes: ZIPFLEET_FAIR_LANES (default 8). Prints the lane URLs, then the DLQ's.
set -euo pipefail
max_deliveries="${1:-5}"
visibility="${2:-60}"
jobs="${ZIPFLEET_JOBS_QUEUE:-zipfleet-jobs}"
completed="${ZIPFLEET_COMPLETED_QUEUE:-zipfleet-completed}"
dlq="${ZIPFLEET_DEAD_LETTER_QUEUE:-zipfleet-jobs-dlq}"
lanes="${ZIPFLEET_FAIR_LANES:-8}"
[[ "$lanes" =~ ^[1-9][0-9]*$ ]] || { echo "ZIPFLEET_FAIR_LANES must be a positive number, not '$lanes'" >&2; exit 1; }
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
for ((n = 0; n < lanes; n++)); do
  lane="$jobs"
  [ "$n" -eq 0 ] || lane="$jobs-lane$n"
  aws "${endpoint[@]}" sqs create-queue --queue-name "$lane" --attributes "$attributes" --query QueueUrl --output text
done
echo "$dlq_url"
