"""The simulated Convox rack, its shell and a wire-exact client: the far side in tests and the demo. Never imported by auditkit."""
