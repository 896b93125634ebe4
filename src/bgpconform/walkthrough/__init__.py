"""The walkthrough as stages: their names, the objects the harness creates, and the machine between them."""
