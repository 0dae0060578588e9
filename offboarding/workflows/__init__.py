"""The ClientOffboarding workflow and the deterministic code it runs."""
