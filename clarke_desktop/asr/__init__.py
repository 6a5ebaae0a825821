"""MedASR speech recognition through ONNX Runtime (CUDA where available, CPU otherwise)."""
