"""Tests: lifecycle."""
