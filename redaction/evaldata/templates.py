"""Templates and word lists for generate.py, all written for opsdraft (no third-party data).

{UPPER} fields are sensitive values that must be redacted; {lower} fields are technical tokens that must survive.
"""

SENSITIVE = {
    "PERSON": ("PERSON", "full_name"), "FIRST": ("PERSON", "first_name"), "EMAIL": ("EMAIL", "email"),
    "PHONE": ("PHONE", "phone"), "CARD": ("CREDIT_CARD", "card"), "IBAN": ("IBAN", "iban"),
    "IPV4": ("IP_ADDRESS", "ipv4"), "IPV6": ("IP_ADDRESS", "ipv6"), "SSN": ("US_SSN", "ssn"),
    "ADDRESS": ("LOCATION", "street_address"),
    "AWS_KEY": ("SECRET", "aws_access_key"), "AWS_SECRET": ("SECRET", "aws_secret_key"),
    "GH_TOKEN": ("SECRET", "github_token"), "SLACK_TOKEN": ("SECRET", "slack_token"),
    "STRIPE_KEY": ("SECRET", "stripe_key"), "OPENAI_KEY": ("SECRET", "openai_key"), "JWT": ("SECRET", "jwt"),
    "BEARER": ("SECRET", "bearer_token"), "PEM": ("SECRET", "pem_private_key"),
    "URL_PASSWORD": ("SECRET", "url_password"), "KV_PASSWORD": ("SECRET", "kv_password"),
    "COOKIE": ("SECRET", "session_cookie"),
}

FIRST = """Ada Priya Wei Olusegun Mateo Ingrid Hiroshi Fatima Liam Chloe Dmitri Aisha Tomasz Lucia Kwame Sofia Rahul
Elena Jonas Mei Diego Hannah Youssef Astrid Carlos Nadia Pieter Amara Kenji Zainab Oscar Leila Bruno Thandiwe Marek
Isabel Arjun Greta Samuel Yuki Emeka Clara Farid Noor Henrik Camila Tariq Beatriz Lars Daniela""".split()
LAST = """Lovelace Raman Zhang Adeyemi Fernandez Johansson Tanaka Haddad Murphy Dubois Volkov Khan Nowak Romano Mensah
Rossi Sharma Petrova Becker Chen Morales Schmidt Benali Lindqvist Ortega Haidari Jansen Okafor Watanabe Hussain Reyes
Mansour Costa Dlamini Kowalski Navarro Patel Hoffmann Nakamura Eze Martin Rahimi Svensson Oliveira Aziz Pereira Nilsson
Garcia O'Connor""".split()
MAIL_DOMAINS = ["example.com", "acme-corp.example", "mail.example.org", "customer.example.net", "example.co.uk"]
STREETS = ["Maple", "Oak", "Harbor", "Willow", "Cedar", "Lakeview", "Sunset", "Mill", "Station", "Elm"]
CITIES = ["Springfield", "Riverton", "Portland", "Fairview", "Greenville", "Madison", "Bristol"]
WEAK_PASSWORDS = ["letmein", "summer", "dragon", "welcome", "monkey", "qwerty"]
SERVICES = ["checkout", "payments", "orders", "auth", "search", "billing", "inventory", "gateway", "notifier"]

TECH_LISTS = {
    "svc": [s + "-svc" for s in SERVICES] + ["api-gateway", "ledger-worker", "email-sender"],
    "ns": ["payments-prod", "checkout", "platform", "kube-system", "orders-staging", "monitoring"],
    "errcode": ["ERR_CONN_RESET", "E1234", "ECONNREFUSED", "ETIMEDOUT", "PG-40001", "HTTP 503", "HTTP 429",
                "SQLSTATE 57014", "OOMKilled", "CrashLoopBackOff", "ERR-4471", "ENOSPC", "ORA-00060"],
    "path": ["/var/log/nginx/access.log", "/srv/app/checkout/handlers.py", "/api/v1/orders", "/etc/ssl/certs/ca.pem",
             "/var/lib/postgresql/data", "/opt/app/config/settings.yaml", "/healthz", "/api/v2/payments/capture",
             "src/main/java/com/acme/PaymentService.java", "/home/deploy/.kube/config"],
    "metric": ["http_requests_total", "http_request_duration_seconds_bucket", "kafka_consumergroup_lag",
               "node_memory_MemAvailable_bytes", "pg_stat_activity_count", "container_cpu_usage_seconds_total",
               "redis_connected_clients", "grpc_server_handled_total"],
    "sql": ["SELECT id, status FROM orders WHERE created_at > now() - interval '1 hour'",
            "UPDATE payments SET state = 'captured' WHERE id = $1", "DELETE FROM sessions WHERE expires_at < now()",
            "INSERT INTO audit_log (actor, action) VALUES ($1, $2)", "VACUUM ANALYZE orders"],
    "alertname": ["HighErrorRate", "KubePodCrashLooping", "PostgresReplicationLag", "DiskWillFillIn4Hours",
                  "KafkaConsumerLagHigh", "CertificateExpiringSoon", "HighLatencyP99", "NodeMemoryPressure"],
    "sev": ["SEV1", "SEV2", "SEV3", "critical", "warning"],
    "exc": ["KeyError", "ValueError", "TimeoutError", "ConnectionResetError", "psycopg.errors.SerializationFailure",
            "java.lang.NullPointerException", "java.lang.OutOfMemoryError"],
    "func": ["submit", "capture_payment", "reserve_stock", "handle_webhook", "refresh_token", "PaymentService.capture"],
    "ticketid": ["SUP-1042", "SUP-2231", "INC-4821", "OPS-337", "SUP-5120", "INC-5003"],
    "flag": ["new_checkout_flow", "fast_refunds", "ledger_v2", "async_capture"],
    "image": ["registry.internal/checkout:v2.3.1", "registry.internal/payments:v1.18.0", "ghcr.io/acme/auth:2.0.4"],
}

_LOG_JSON = [
    '{"ts": "{ts}", "level": "error", "svc": "{svc}", "msg": "payment declined", "email": "{EMAIL}", '
    '"request_id": "{uuid}", "code": "{errcode}"}',
    '{"ts": "{ts}", "level": "info", "svc": "{svc}", "event": "login", "user": "{EMAIL}", "client_ip": "{IPV4}", '
    '"session": "{COOKIE}", "host": "{host}"}',
    '{"time": "{ts}", "level": "warn", "pod": "{pod}", "msg": "retrying upstream", "upstream": "{host}:{port}", '
    '"latency": "{ms}", "trace_id": "{uuid}"}',
    '{"ts": "{ts}", "level": "debug", "svc": "{svc}", "headers": {"authorization": "Bearer {BEARER}", '
    '"x-request-id": "{uuid}"}, "path": "{path}"}',
    '{"ts": "{ts}", "level": "error", "svc": "{svc}", "msg": "card charge failed", "card": "{CARD}", '
    '"amount": {num}, "request_id": "{uuid}"}',
    '{"ts": "{ts}", "level": "info", "svc": "{svc}", "msg": "refund issued", "iban": "{IBAN}", '
    '"customer_phone": "{PHONE}", "version": "{version}"}',
    '{"ts": "{ts}", "level": "error", "svc": "{svc}", "msg": "config loaded", "AWS_ACCESS_KEY_ID": "{AWS_KEY}", '
    '"AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}", "region": "eu-west-1"}',
    '{"ts": "{ts}", "level": "info", "svc": "{svc}", "msg": "kyc check", "ssn": "{SSN}", "result": "pass", '
    '"host": "{host}"}',
    '{"ts": "{ts}", "level": "info", "svc": "{svc}", "metric": "{metric}", "value": {num}, "pod": "{pod}"}',
    '{"ts": "{ts}", "level": "warn", "svc": "{svc}", "msg": "slow query", "sql": "{sql}", "duration": "{ms}", '
    '"db": "{host}"}',
    '{"ts": "{ts}", "level": "info", "svc": "{svc}", "msg": "address updated", "shipping_address": "{ADDRESS}", '
    '"request_id": "{uuid}"}',
]
_LOG_PLAIN = [
    "{ts} ERROR {svc}: upstream connect error {errcode} to {host}:{port} after {ms}",
    "{ts} INFO {svc} user {EMAIL} logged in from {IPV4} (request_id={uuid})",
    "{ts} WARN {svc} connecting to postgres://app:{URL_PASSWORD}@{host}:5432/orders failed: {errcode}",
    "{ts} DEBUG {svc} env DB_PASSWORD={KV_PASSWORD} DB_HOST={host} POOL=20",
    "{ts} INFO {svc} deployed {image} version {version} to namespace {ns}",
    "{ts} ERROR {svc} slack notify failed token={SLACK_TOKEN} status=401",
    "{ts} INFO {svc} GET {path}?session_id={COOKIE}&page=2 200 {ms}",
    "{ts} WARN {svc} client {IPV6} exceeded rate limit on {path} ({errcode})",
    "{ts} INFO {svc} Set-Cookie: sessionid={COOKIE}; Path=/; HttpOnly",
    "{ts} ERROR {svc} stripe webhook verification failed key={STRIPE_KEY} event={uuid}",
    "{ts} DEBUG {svc} calling model with OPENAI_API_KEY={OPENAI_KEY} latency {ms}",
    "{ts} INFO {svc} cloning with GITHUB_TOKEN={GH_TOKEN} commit {sha}",
    "{ts} WARN {svc} request from {IPV4} with Authorization: Bearer {JWT} rejected: expired",
    "{ts} INFO {svc} pod {pod} in namespace {ns} restarted ({errcode}); see {path}",
    "{time} {svc}[{num}]: {metric} above threshold on {host}, value {num}",
    "{ts} INFO {svc} sms sent to {PHONE} for order {uuid}",
    "{ts} INFO {svc} redis://default:{URL_PASSWORD}@{host}:6379/0 connected; {metric}={num}",
    "{ts} INFO {svc} flag {flag} enabled for {num} users; build {sha} version {version}",
]
_STACK = [
    "{ts} ERROR {svc} unhandled exception request_id={uuid}\nTraceback (most recent call last):\n"
    '  File "{path}", line {num}, in {func}\n    charge(card="{CARD}", email="{EMAIL}")\n{exc}: card declined',
    "{ts} ERROR {svc} Traceback (most recent call last):\n  File \"{path}\", line {num}, in {func}\n"
    "    conn = connect(\"postgresql://svc:{URL_PASSWORD}@{host}/app\")\n{exc}: could not connect ({errcode})",
    "Exception in thread \"main\" {exc}: user {EMAIL} not found\n\tat {func}({path}:{num})\n"
    "\tat com.acme.Api.handle(Api.java:{num})",
    "{ts} FATAL {svc} failed to load key from {path}:\n{PEM}\n{exc}: unsupported key format",
]
_ALERTS = [
    "[FIRING:1] {alertname} {svc} {sev}: {errcode} ratio above 5% on {host} since {ts}",
    "[RESOLVED] {alertname} in {ns}: {metric} back under threshold ({num}) at {ts}",
    "Alertmanager: {alertname} severity={sev} pod={pod} namespace={ns} runbook=runbooks/{svc}.md",
    "PagerDuty {ticketid} triggered: {alertname} on {host}; on-call {PERSON} paged via {PHONE}",
    "{alertname} {sev}: login failures from {IPV4} for account {EMAIL} ({num} in 5m)",
    "Grafana alert {alertname}: {metric}{job=\"{svc}\"} > {num} for 10m (dashboard {uuid})",
    "{alertname}: certificate for {host} expires in {num} days; issuer Let's Encrypt; version {version}",
    "Sentry {exc} in {func} ({path}) first seen {ts}, {num} events, release {version}",
    "Datadog monitor {alertname} on {host}: {metric} = {num}; contact {EMAIL}",
    "[FIRING:2] {alertname} {svc} leaked credential detected in logs: {AWS_KEY} ({sev})",
    "CloudWatch alarm {alertname} in eu-west-1 for {svc}: state ALARM at {ts}; source {IPV6}",
]
_TICKETS = [
    "Subject: Refund not received\nHi support,\nI was charged twice on card {CARD} for order {uuid}. Please refund "
    "to {IBAN}.\nThanks,\n{PERSON}",
    "Subject: Cannot log in\nHello, my name is {PERSON} and I cannot log in since {time}. My email is {EMAIL} and "
    "my phone is {PHONE}. Error code {errcode}.",
    "Customer {PERSON} ({EMAIL}) reports checkout fails with {errcode} on {version}; request id {uuid}.",
    "Subject: Address change\nPlease update my shipping address to {ADDRESS}. Account holder: {PERSON}, "
    "phone {PHONE}.",
    "Spoke with {PERSON} on the phone; they confirmed the last four of SSN and full SSN {SSN} for KYC (ticket "
    "{ticketid}).",
    "Ticket {ticketid}: {PERSON} says the export to {path} stopped working after deploy {version} at {time}.",
    "Subject: API key leaked?\nDear team,\nI accidentally pasted our key {STRIPE_KEY} in a public issue. Can you "
    "rotate it?\nBest regards,\n{PERSON}",
    "From: {EMAIL}\nI tried again from IP {IPV4} and still get {errcode}. {PERSON} from our finance team is in cc.",
    "Subject: Invoice question\nMy colleague {PERSON} asked about invoice {num}; please call {FIRST} at {PHONE}.",
    "We are {PERSON} and {PERSON2} from the platform team at Acme; our webhook endpoint returns {errcode} "
    "since {ts}.",
]
_COMMENTS = [
    "Internal note: called {PERSON} back at {PHONE}, issue reproduced on {host}, escalated to {svc} on-call.",
    "Agent reply: Hi {FIRST}, thanks for the details. We rolled back {svc} to {version} at {time}; please retry.",
    "Comment by {PERSON}: customer pasted password={KV_PASSWORD} in the chat, asked them to rotate it.",
    "Escalated to {PERSON}; logs show {errcode} on {pod} in {ns}, request {uuid}.",
    "{PERSON} confirmed the refund went to {IBAN}; closing {ticketid}.",
    "Follow-up: {FIRST} will check with {PERSON} whether the card ending in {CARD} was reissued.",
]
_SLACK = [
    "@{FIRST} can you look at {alertname} on {host}? {PERSON} says it started after {version}.",
    "fyi {PERSON} pasted the prod token in #general: {GH_TOKEN} -- revoking now",
    "here is the curl: curl -H 'Authorization: Bearer {BEARER}' https://{host}{path}",
    "{FIRST}: the {metric} spike lines up with {sql}",
    "ping {PERSON}, the customer at {EMAIL} is asking again about {ticketid}",
    "deploy of {image} done, {FIRST} please verify {path} on {host}",
    "who owns {svc}? {PERSON} left, and the runbook still lists {PHONE} as the escalation number",
    "slack bot token rotated, old one {SLACK_TOKEN} is dead; new one is in vault",
    "{PERSON} and {FIRST2} are handling {ticketid}; {PERSON2} is out until Monday",
]

TEMPLATES = {
    "logs": {"json_log": _LOG_JSON, "plain_log": _LOG_PLAIN, "stack_trace": _STACK},
    "alerts": {"alert": _ALERTS},
    "tickets": {"ticket": _TICKETS, "ticket_comment": _COMMENTS, "slack": _SLACK},
}
SENSITIVE["PERSON2"] = ("PERSON", "full_name")
SENSITIVE["FIRST2"] = ("PERSON", "first_name")
