"""Offline IAM check of template.yaml against AWS's Service Authorization Reference (docs/iam.md)."""
