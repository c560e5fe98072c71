"""AWS control-plane adapters: the only package that imports boto3.

`clients.client(service)` hands out cached boto3 clients; `errors.aws_call(operation, resource)` translates botocore
errors into `pullthrough.errors.AwsError` types. Each service has one small module (`sns.py`, ...).
"""
