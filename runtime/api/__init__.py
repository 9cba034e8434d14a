"""The Flow Builder API (FastAPI): `python -m flowbuilder.runtime.api`, or the Lambda handler in
lambda_handler.py (ultra)."""
