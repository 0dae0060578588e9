"""Payload encryption: what Temporal stores about an offboarding is ciphertext."""
