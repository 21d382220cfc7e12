"""SNS: the capture report's notification."""

from __future__ import annotations

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws


@translated_errors
def publish(topic_arn: str, subject: str, message: str) -> str:
    return str(aws().sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)["MessageId"])
