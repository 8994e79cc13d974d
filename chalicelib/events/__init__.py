"""Event handlers' code: parse an EventBridge event, SNS message or schedule tick, one service call."""
