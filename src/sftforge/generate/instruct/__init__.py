"""Instruction generators that are not grounded in passages: Self-Instruct, Evol-Instruct, Magpie, the sentence VAE,
and grounded multi-turn dialogue. Each is a driver that yields waves of records; the generate stage commits them."""
