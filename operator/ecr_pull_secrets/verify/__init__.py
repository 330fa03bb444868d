"""The only code that talks to container registries: does a Secret's token pull (plan/verify.py
says what the answers mean)."""
