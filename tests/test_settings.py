import pytest

from opsdraft.settings import SettingsError, load_settings


def test_defaults_are_embedded(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.kafka_bootstrap_servers == ""
    assert s.db_url.startswith("sqlite:///") and s.db_url.endswith("opsdraft.db")
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert s.topics.alerts == "alerts" and s.topics.dead_letters == "dead-letters"
    assert s.topics.ticket_replies == "ticket-replies"


def test_env_prefix_and_topic_override(monkeypatch):
    monkeypatch.setenv("OPSDRAFT_HTTP_PORT", "9000")
    monkeypatch.setenv("OPSDRAFT_TOPIC_ALERTS", "prod-alerts")
    monkeypatch.setenv("OPSDRAFT_DATABASE_URL", "postgresql://u@db/opsdraft")
    monkeypatch.setenv("OPSDRAFT_SLACK_APPROVERS", "U1, U2")
    s = load_settings()
    assert s.http_port == 9000
    assert s.topics.alerts == "prod-alerts"
    assert s.db_url == "postgresql+psycopg://u@db/opsdraft"
    assert s.approvers == {"U1", "U2"}


@pytest.mark.parametrize("var,value", [
    ("OPSDRAFT_HTTP_PORT", "eighty"),
    ("OPSDRAFT_HTTP_PORT", "70000"),
    ("OPSDRAFT_SLACK_API_URL", "slack.com/api"),
    ("OPSDRAFT_SLACK_INCIDENT_CHANNEL", "#incidents"),
    ("OPSDRAFT_REDACTION_MODE", "off"),
    ("OPSDRAFT_LOG_LEVEL", "LOUD"),
    ("OPSDRAFT_MODEL", "/no/such/model.gguf"),
    ("OPSDRAFT_INCIDENT_GROUP_BY", "service;job"),
])
def test_wrong_setting_is_named(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value)


def test_wrong_database_url_is_named(monkeypatch):
    monkeypatch.setenv("OPSDRAFT_DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError, match="OPSDRAFT_DATABASE_URL"):
        load_settings()


def test_redaction_key_is_generated_once(tmp_path):
    s = load_settings(data_dir=tmp_path)
    key = s.redaction_key_bytes()
    assert len(key) == 64 and s.redaction_key_bytes() == key
    assert (tmp_path / "redaction.key").stat().st_mode & 0o077 == 0


SUMMARIZER_VARS = ("OPSDRAFT_MODEL_PROMPT_LOOKUP", "OPSDRAFT_MODEL_TIMEOUT_S", "OPSDRAFT_MODEL_API_KEY",
                   "OPSDRAFT_MODEL_SERVER_MODEL", "OPSDRAFT_LLM_DTYPE", "OPSDRAFT_FAISS_THREADS",
                   "OPSDRAFT_POSTMORTEM_TEMPLATE")


def test_summarizer_settings_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for var in SUMMARIZER_VARS:
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert (s.model_prompt_lookup, s.model_timeout_s, s.model_api_key, s.model_server_model) == (
        "auto", None, "", "default")
    assert (s.llm_dtype, s.faiss_threads, s.postmortem_template) == ("", 1, None)
    monkeypatch.setenv("OPSDRAFT_POSTMORTEM_TEMPLATE", " ")  # empty: the built-in template
    monkeypatch.setenv("OPSDRAFT_MODEL_PROMPT_LOOKUP", "")
    s = load_settings()
    assert s.postmortem_template is None and s.model_prompt_lookup == "auto"


def test_summarizer_settings_keep_their_variables(monkeypatch, tmp_path):
    template = tmp_path / "pm.md"
    template.write_text("# $title\n")
    values = {"OPSDRAFT_MODEL_PROMPT_LOOKUP": " 10 ", "OPSDRAFT_MODEL_TIMEOUT_S": "30",
              "OPSDRAFT_MODEL_API_KEY": "k-1", "OPSDRAFT_MODEL_SERVER_MODEL": "qwen2.5:7b",
              "OPSDRAFT_LLM_DTYPE": "int8", "OPSDRAFT_FAISS_THREADS": "4",
              "OPSDRAFT_POSTMORTEM_TEMPLATE": str(template)}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    s = load_settings()
    assert (s.model_prompt_lookup, s.model_timeout_s, s.model_api_key, s.model_server_model) == (
        "10", 30.0, "k-1", "qwen2.5:7b")
    assert (s.llm_dtype, s.faiss_threads, s.postmortem_template) == ("int8", 4, template)


@pytest.mark.parametrize("var,value", [
    ("OPSDRAFT_MODEL_PROMPT_LOOKUP", "fast"),
    ("OPSDRAFT_MODEL_TIMEOUT_S", "0"),
    ("OPSDRAFT_MODEL_TIMEOUT_S", "soon"),
    ("OPSDRAFT_MODEL_SERVER_MODEL", ""),
    ("OPSDRAFT_LLM_DTYPE", "int3"),
    ("OPSDRAFT_FAISS_THREADS", "0"),
    ("OPSDRAFT_POSTMORTEM_TEMPLATE", "/no/such/template.md"),
])
def test_wrong_summarizer_setting_is_named(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value)
