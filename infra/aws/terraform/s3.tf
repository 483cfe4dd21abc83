# The object store: zips (PREFIX/zips/), large job specs (PREFIX/specs/) and the shared cache
# (PREFIX/cache/). Private, encrypted, TLS only, and nothing kept longer than needed: the
# zips are made of children's photos.

resource "aws_s3_bucket" "store" {
  #checkov:skip=CKV_AWS_144:Cross-region replication would copy children's photos to a second region; everything here can be rebuilt (re-run a job), so a replica adds exposure, not durability that matters
  #checkov:skip=CKV_AWS_145:Encrypted with SSE-S3 (AES-256); SSE-KMS would need kms:Decrypt for every presigned download URL the API hands out and per-request KMS calls for no gain in who can read the objects (IAM decides that)
  #checkov:skip=CKV_AWS_18:Server access logging needs a second log bucket the operator owns; CloudTrail data events are the recommended audit trail and are account-level, outside this module
  #checkov:skip=CKV2_AWS_62:No consumer for S3 event notifications: completions are published on the completed SQS queue by the workers
  #checkov:skip=CKV_AWS_21:Versioning is a variable (bucket_versioning), off by default: objects are rebuildable and old versions would outlive the privacy expiry; see variables.tf
  bucket        = var.bucket_name
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "store" {
  bucket = aws_s3_bucket.store.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "store" {
  bucket                  = aws_s3_bucket.store.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "store" {
  bucket = aws_s3_bucket.store.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "store" {
  bucket = aws_s3_bucket.store.id

  versioning_configuration {
    status = var.bucket_versioning ? "Enabled" : "Disabled"
  }
}

# Retention: the same rules as infra/lifecycle.json, the deploy kit's one statement of them
# (compose applies that file to SeaweedFS; on Kubernetes the operator applies it with
# `aws s3api put-bucket-lifecycle-configuration`), here with the periods as variables.
# infra/check.sh evaluates this module and fails unless, with the variables' defaults, these
# rules are exactly that file's. README "Retention" lists what each one deletes.
resource "aws_s3_bucket_lifecycle_configuration" "store" {
  bucket = aws_s3_bucket.store.id

  rule {
    id     = "zips"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}/zips/"
    }
    expiration {
      days = var.zip_expiry_days
    }
  }

  rule {
    id     = "cache"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}/cache/"
    }
    expiration {
      days = var.cache_expiry_days
    }
  }

  rule {
    id     = "specs"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}/specs/"
    }
    expiration {
      days = var.spec_expiry_days
    }
  }

  # The whole bucket: an erased or expired zip leaves no old version behind for more than a
  # day (where versioning is on), and a multipart upload a killed worker never completed is
  # aborted after a day (its parts are stored, and billed, until then).
  rule {
    id     = "noncurrent-versions-and-unfinished-uploads"
    status = "Enabled"
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.store]
}

data "aws_iam_policy_document" "store_tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.store.arn,
      "${aws_s3_bucket.store.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "store" {
  bucket = aws_s3_bucket.store.id
  policy = data.aws_iam_policy_document.store_tls_only.json

  depends_on = [aws_s3_bucket_public_access_block.store]
}
