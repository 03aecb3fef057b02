"""Where services are built, run and routed: the control plane's Workloads port, implemented on this machine."""
