"""The simulated Convox rack, its shell and a wire-exact client: the far side in tests and the demo. Never imported by
auditkit; of auditkit it imports only auditkit.capture.wire (the wire details the gateway reads)."""
