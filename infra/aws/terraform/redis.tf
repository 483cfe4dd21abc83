# The status store. A replication group with a replica in a second AZ and automatic
# failover, plus daily snapshots: job statuses survive a node loss and can be restored.
# (ElastiCache offers no append-only file on Redis >= 2.8.22 or with Multi-AZ; the replica
# and snapshots are its persistence. And by the contract, a job still reaches a final status
# even if the status store loses its data.)

resource "aws_elasticache_subnet_group" "status" {
  name       = "${var.name}-status"
  subnet_ids = var.private_subnet_ids
}

resource "aws_elasticache_replication_group" "status" {
  #checkov:skip=CKV_AWS_30:zipfleet's Redis client speaks plain redis:// only (no TLS support in the build yet); traffic stays inside the VPC, limited by security group to the API and worker tasks. Turn on with rediss:// once the client supports it
  #checkov:skip=CKV_AWS_31:An AUTH token requires in-transit encryption (see CKV_AWS_30); access is limited by security group
  #checkov:skip=CKV_AWS_191:Encrypted at rest with the ElastiCache service key; a customer-managed KMS key adds key administration for status documents that expire after days
  replication_group_id       = "${var.name}-status"
  description                = "zipfleet job status store"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  port                       = 6379
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.status.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = false
  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false
}
