"""sftforge: turn what an organisation has into supervised fine-tuning data, and prove it by fine-tuning."""

__version__ = "0.1.0"
