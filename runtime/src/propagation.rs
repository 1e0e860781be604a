//! W3C Trace Context and Baggage: continuing a trace from incoming headers and passing it on.
