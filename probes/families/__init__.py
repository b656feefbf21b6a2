"""Probe families: generators of probes over a space, and the analysis of their results.

PRIVILEGED_FAMILIES names the only families whose probes may run privileged;
the campaign refuses privileged probes from any other family.
"""

PRIVILEGED_FAMILIES = frozenset({"csr", "msr"})
