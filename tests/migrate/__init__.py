"""Tests: migrate."""
