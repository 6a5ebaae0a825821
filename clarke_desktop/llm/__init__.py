"""Language model engines (llama.cpp in-process, OpenAI-compatible server) behind one interface.

    from clarke_desktop.llm import Turn, get_engine, with_instructions
    engine = get_engine("letter_writer")          # installed MedGemma, server, or embedded demo
    for piece in engine.stream(turns, max_tokens=400, cancel=token): ...
    flags = engine.generate_json(turns, MySchema, max_tokens=200)

Importing this package does not load llama.cpp; engines are created on first use.
"""

from clarke_desktop.llm.base import (
    ContextTooLong,
    InvalidModelOutput,
    LlmEngine,
    LlmError,
    ModelMissing,
    ModelOutOfMemory,
    Turn,
)
from clarke_desktop.llm.prompt import neutralise, render_text, split_thinking, with_instructions
from clarke_desktop.llm.registry import close_all, embedded_model_path, get_engine, use_server

__all__ = [
    "ContextTooLong",
    "InvalidModelOutput",
    "LlmEngine",
    "LlmError",
    "ModelMissing",
    "ModelOutOfMemory",
    "Turn",
    "close_all",
    "embedded_model_path",
    "get_engine",
    "neutralise",
    "render_text",
    "split_thinking",
    "use_server",
    "with_instructions",
]
