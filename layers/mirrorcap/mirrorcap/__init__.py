"""mirrorcap: capture an EC2 instance's traffic with VPC Traffic Mirroring, and clean up after itself.

This package is the Lambda layer:
- `steps`: one module per workflow step (the decisions); `functions/<step>/app.py` wraps one of them.
- `aws`: the adapters, the only modules that call AWS; errors are translated there, once.
- `models`, `errors`, `naming`, `tagged`, `settings`: the data at every boundary, the error names the
  state machine matches, identifiers and tags, what mirrorcap created, the stack's settings.
- `collector`: the capture script the collector runs and its upload grants; `report`: the pcap report.
"""
