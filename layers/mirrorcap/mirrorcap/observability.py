"""The one Logger, Tracer and Metrics of mirrorcap, shared by every function.

Powertools reads its settings (service name, log level, namespace) from the function's environment,
which the template sets; nothing else is read from the environment here.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "mirrorcap"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="Mirrorcap", service=SERVICE)
