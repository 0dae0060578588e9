"""The checklist's stages, one module each, in the order a contract end runs them."""
