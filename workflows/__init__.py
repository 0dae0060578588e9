"""Workflow definitions. The task queue name lives here so every process agrees on it."""

TASK_QUEUE = "client-offboarding"
