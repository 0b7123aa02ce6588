#!/usr/bin/env python3
"""Creates an IAM user with full rights and a bucket on a signature-checking moto server
(started with INITIAL_NO_AUTH_ACTION_COUNT=3); prints "ACCESS_KEY SECRET"."""
import json, sys
import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="tb")
key = iam.create_access_key(UserName="tb")["AccessKey"]
iam.put_user_policy(UserName="tb", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(key["AccessKeyId"], key["SecretAccessKey"], flush=True)
