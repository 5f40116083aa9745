"""Gradio pages. Each builder makes components and wires one engine call per event; no business
logic lives here."""
