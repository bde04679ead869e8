"""Edge runtime: answers the four maintenance questions from a machine's ONNX bundle (numpy + onnxruntime only)."""
