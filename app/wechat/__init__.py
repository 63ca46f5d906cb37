"""Sans-IO core of the WeChat push protocol: no Flask, no environment, no network."""
