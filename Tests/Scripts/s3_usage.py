#!/usr/bin/env python3
"""Prints the total size in bytes of the objects under PREFIX in BUCKET (an independent listing,
for tests that compare prune's figure with what the bucket really holds).
Usage: s3_usage.py ENDPOINT BUCKET PREFIX ACCESS_KEY SECRET_KEY"""
import sys
import boto3

endpoint, bucket, prefix, access, secret = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=access, aws_secret_access_key=secret)
total = 0
# The whole bucket, filtered here: moto's signature check refuses a Prefix holding "/".
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        if o["Key"].startswith(prefix):
            total += o["Size"]
print(total, flush=True)
