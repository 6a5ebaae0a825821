"""Language model engines (llama.cpp in-process, OpenAI-compatible server) behind one interface."""
