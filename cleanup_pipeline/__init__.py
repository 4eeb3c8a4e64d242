"""Inactive-account cleanup: a Dagster job over the users table, S3 and SES."""
