"""Test doubles for Slack: a fake Web API that behaves like Slack and a request signer. Only tests and the
demo use them; product code never does."""
