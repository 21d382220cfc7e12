"""mirrorcap: capture an EC2 instance's traffic with VPC Traffic Mirroring, and clean up after itself.

This package is the Lambda layer: request models, the domain logic of each workflow step, the AWS
adapters, the collector's capture script and the pcap report. Handlers in `functions/` are thin
wrappers around `mirrorcap.workflow`.
"""
