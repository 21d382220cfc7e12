"""ReportCapture: summary.json, report.html and decapsulated.pcap beside the pcaps, and one notification."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.report_capture import report_capture

lambda_handler = workflow_step(report_capture)
