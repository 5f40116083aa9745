"""csbot: a self-hosted customer-service bot.

A fine-tuned intent classifier answers what the support history covers, a FAISS store of
staff-curated answers handles the rest, and an honest fallback hands everything else to a person.

The package by layer. store and nlu import no other layer; dialogue uses nlu and store; service
uses those three; web uses them all. Each layer's `__init__` says what lives there and what it may
import, and tests/test_layers.py checks it:

    store/      the one source of truth: every row, on SQLite or PostgreSQL
    nlu/        the models: the intent classifier, its training, the answer encoder, ONNX serving
    dialogue/   one message to one reply: routing, templates, slots, the curated-answer index
    service/    a running service kept in step: the engine, following the store, model versions,
                training runs, accounts
    web/        the HTTP server and the pages (customer chat, staff, admin)

    settings.py, errors.py, text.py, language.py, files.py, importer.py, cli.py   at the top
"""

import os

# No outside requests: these must be set before transformers, sentence-transformers or gradio
# are imported. setdefault, so someone with a model hub can still opt in (HF_HUB_OFFLINE=0).
for _name, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                      "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_RUN_HISTORY": "False", "TOKENIZERS_PARALLELISM": "false",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
