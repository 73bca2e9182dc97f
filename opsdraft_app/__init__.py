"""The composition root: the CLI, the process runner, the HTTP app and the demo. It stands on the roles
(consumers, summarizer, bot), which stand on the shared core (opsdraft, redaction); nothing imports it."""
