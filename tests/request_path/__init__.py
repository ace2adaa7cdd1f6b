"""Tests: request_path."""
