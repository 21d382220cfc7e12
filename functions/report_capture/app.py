"""ReportCapture: summary.json, report.html and decapsulated.pcap beside the pcaps, and one notification."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import ReportInput
from mirrorcap.workflow.report import report_capture

lambda_handler = workflow_step(ReportInput, report_capture)
