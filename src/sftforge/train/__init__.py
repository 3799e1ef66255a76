"""Fine-tuning on the dataset (LoRA or full SFT), bandit-driven data sampling and evaluation."""
