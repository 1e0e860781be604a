//! Health checks and the liveness, readiness and startup probes built on them.
