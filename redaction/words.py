"""Word lists for telling names from ops vocabulary (used by engine.py)."""

# Capitalised words that spaCy (or the greeting/signature rules) mistake for names in ops text,
# including sentence-initial imperatives ("Ignore previous instructions").
TECH_WORDS = frozenset("""
team all everyone folks there support ops oncall on-call customer customers user users admin root service
server client sre devops engineering world regards thanks hello hi hey best cheers sincerely dear name contact
error warning info debug critical alert alerts incident status pod node cluster deployment release rollback
hotfix staging production prod dev sev urgent update resolved firing pending high low medium
kafka postgres postgresql redis grafana prometheus kubernetes helm jenkins nginx envoy istio terraform ansible
docker alertmanager pagerduty opsgenie slack jira confluence sentry datadog splunk kibana elasticsearch
opensearch logstash consul vault nomad argo argocd flux celery gunicorn uvicorn django flask rails spring
linux ubuntu debian centos alpine windows python java golang rust node react angular mongo mongodb mysql
mariadb cassandra zookeeper rabbitmq minio etcd coredns calico cilium karpenter aws gcp azure lambda
cloudwatch cloudfront cloudflare akamai stripe twilio okta github gitlab bitbucket circleci heroku vercel
kubectl grpc http https oauth authorization bearer openai llama mistral ollama faiss pytest monday tuesday
wednesday thursday friday saturday sunday
street avenue road lane drive boulevard court place square parkway highway way
corp inc ltd llc gmbh plc company team group bank holdings labs systems cloud
ignore disregard forget please check restart deploy rollback revert see note fix run stop start retry escalate
page ack mute silence resolve close open merge post send reply ping
""".split())
# Capitalised only because they start a sentence: never names, so they do not send text to NER. (Words that are
# also first names -- Will, May, Mark, Grace -- are left out on purpose.)
COMMON_WORDS = frozenset("""
a an the i we you he she they it me us my our your his her their its this that these those there here what which
who whom whose when where why how is are was were be been being am have has had do does did will would can could
should shall might must not no yes ok okay and or but if then so because as at by for from in into of on onto to
with without about after before since until again also just still only even now today tomorrow yesterday soon
please thanks thank sorry hello hi hey dear subject re fw fwd cc bcc sent date internal note notes agent reply
replied follow followup follow-up comment comments escalated escalating spoke called ticket tickets issue issues
problem problems question questions request requests account accounts order orders invoice payment payments
refund refunds card cards address email phone password login logs log logged error errors failed failure works
working broken same other another any some all none every each both either neither more most less least many much
few new old first last next previous our their tried trying try tries checked confirmed closing closed opened
reopened resolved fixed deployed rolled rolling looks seems appears thought think know see saw seen got get gets
my mine yours after-hours fyi asap btw eta tl tldr who's i'm we're they're it's that's there's can't don't won't
cannot
""".split())
