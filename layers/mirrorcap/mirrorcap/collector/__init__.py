"""The collector's capture: the script SSM Run Command runs on the collector (capture.sh), its renderer
(command) and what it delivers to S3 (manifest). docs/collector.md describes how it behaves."""
