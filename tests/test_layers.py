"""The layers stay true: each module imports only what its layer's `__init__` docstring allows.

Read from the source (every import, at the top or inside a function), so a rule breaks here
before it breaks in production; and checked at run time for what matters most: the reply path
never loads torch, and the models and the store never load a web framework."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "csbot"
LAYERS = ("nlu", "dialogue", "service", "web", "store")
TOP = {"csbot", "csbot.__main__", "csbot.settings", "csbot.errors", "csbot.text", "csbot.language",
       "csbot.files", "csbot.importer", "csbot.cli"}

# What each part of csbot may import of csbot: a layer by its name, a top module by its dotted name.
ALLOWED = {
    "store": {"csbot.errors"},
    "nlu": {"csbot.errors", "csbot.settings", "csbot.text", "csbot.files"},
    "dialogue": {"csbot.errors", "csbot.settings", "csbot.text", "csbot.language", "csbot.files", "nlu", "store"},
    "service": {"csbot.errors", "csbot.settings", "csbot.text", "csbot.language", "csbot.files", "csbot.importer",
                "nlu", "dialogue", "store"},
    "web": {"csbot.errors", "csbot.settings", "csbot.text", "csbot.language", "csbot.files", "csbot.importer",
            "nlu", "dialogue", "service", "store"},
    "csbot.errors": set(),
    "csbot.text": set(),
    "csbot.files": set(),
    "csbot.language": {"csbot.errors", "csbot.text"},
    "csbot.settings": {"csbot.errors", "csbot.language"},
    "csbot.importer": {"csbot.errors", "store"},
    "csbot.cli": {"csbot.errors", "csbot.settings", "csbot.importer", "nlu", "dialogue", "service", "store"},
    "csbot.__main__": {"csbot.cli"},
    "csbot": set(),
}
# Third-party packages only one part of csbot may import.
OWNED = {"gradio": {"web"}, "fastapi": {"web"}, "starlette": {"web"}, "uvicorn": {"web"}, "matplotlib": {"web"},
         "torch": {"nlu", "csbot.cli"}, "transformers": {"nlu"}, "sentence_transformers": {"nlu"},
         "onnxruntime": {"nlu"}, "onnx": {"nlu"}, "safetensors": {"nlu"}, "tokenizers": {"nlu"},
         "faiss": {"dialogue"}, "igraph": {"dialogue"}, "sqlite3": {"store"}, "sqlite_utils": {"store"}, "psycopg": {"store"},
         "psycopg_pool": {"store"}, "pyotp": {"service"}, "segno": {"service"}, "zxcvbn": {"service"}}


def module_name(path: Path) -> str:
    """Example: csbot/nlu/intents.py -> "csbot.nlu.intents"; csbot/web/__init__.py -> "csbot.web" """
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    """Example: "csbot.nlu.intents" -> "nlu"; "csbot.settings" -> "csbot.settings" """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else module


def imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it. `from csbot.nlu import runtime` -> csbot.nlu.runtime."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
    return found


def test_every_module_sits_in_a_layer_or_is_a_known_top_module():
    assert {part_of(m) for m in MODULES} <= set(LAYERS) | TOP, "a new top-level module: put it in a layer"
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "May import" in doc and "Must not import" in doc, f"csbot/{layer}/__init__.py must state its rules"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_what_its_layer_allows(module):
    part = part_of(module)
    wrong = []
    for name in sorted(imports(MODULES[module])):
        if name.startswith("csbot."):
            target = part_of(name if name in MODULES else name.rsplit(".", 1)[0])
            if target != part and target not in ALLOWED[part] and target != "csbot":
                wrong.append(f"{name} ({target})")
        elif name.split(".")[0] in OWNED and part not in OWNED[name.split(".")[0]]:
            wrong.append(f"{name} (only {', '.join(sorted(OWNED[name.split('.')[0]]))} may import it)")
    assert not wrong, f"{module} ({part}) imports {wrong}; see csbot/{part.removeprefix('csbot.')}'s docstring"


def test_the_rule_catches_a_breach(tmp_path):
    """The checker itself: a dialogue module importing torch, or the service, is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nfrom csbot.service.engine import Engine\nfrom csbot.nlu import intents\n")
    assert imports(bad) == {"torch", "csbot.service.engine", "csbot.nlu", "csbot.nlu.intents"}


def loaded_after(modules: list[str]) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing `modules`."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_reply_path_loads_no_torch_and_no_web_framework():
    loaded = loaded_after([m for m in MODULES if part_of(m) in ("dialogue", "store")]
                          + ["csbot.nlu.intents", "csbot.nlu.runtime", "csbot.nlu.tokens"])
    assert not loaded & {"torch", "transformers", "gradio", "fastapi", "starlette"}, sorted(loaded)


def test_the_models_load_no_store_and_no_web_framework():
    loaded = loaded_after([m for m in MODULES if part_of(m) == "nlu"])
    assert not loaded & {"gradio", "fastapi", "starlette", "sqlite_utils", "psycopg"}, sorted(loaded)
