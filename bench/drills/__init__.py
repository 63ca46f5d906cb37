"""The fault drill's parts: the hosts, WeChat's retries, the count, the faults (bench/drill.py)."""
