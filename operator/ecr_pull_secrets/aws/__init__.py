"""The only code that talks to AWS (and the only code that imports boto3/botocore)."""
