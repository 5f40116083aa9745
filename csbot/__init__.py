"""csbot: a self-hosted customer-service bot.

A fine-tuned intent classifier answers what the support history covers, a FAISS store of
staff-curated answers handles the rest, and an honest fallback hands everything else to a person.
"""

import os

# No outside requests: these must be set before transformers, sentence-transformers or gradio
# are imported. setdefault, so someone with a model hub can still opt in (HF_HUB_OFFLINE=0).
for _name, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                      "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_RUN_HISTORY": "False", "TOKENIZERS_PARALLELISM": "false",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
